//! Whether a rejection names the rule a blockchain test expected.
//!
//! Fixtures name the expected failure as `TransactionException.X` or `BlockException.Y`
//! (several alternatives joined by `|`). Lanes' [`BlockError`] names the rule it found; this
//! maps each fixture name to the rules that mean it. Where clients legitimately disagree on
//! which of two broken rules is seen first (a malformed transaction type is either an RLP error
//! or a transaction the fork rejects), every such rule is accepted.

use alloy_consensus::{
    private::alloy_rlp::Decodable, proofs::calculate_transaction_root, Block, TxEnvelope,
};
use lanes_block::BlockError;

/// Whether `rule` is an acceptable rejection for the fixture's `expected` exception.
pub(crate) fn matches(expected: &str, rule: &BlockError) -> bool {
    expected.split('|').map(str::trim).any(|name| one(name, rule))
}

fn root(rule: &BlockError, name: &str) -> bool {
    matches!(rule, BlockError::Root { field, .. } if *field == name)
}

fn field(rule: &BlockError, name: &str) -> bool {
    matches!(rule, BlockError::HeaderField { field, .. } if *field == name)
}

fn one(name: &str, rule: &BlockError) -> bool {
    use BlockError as E;
    // An ommer breaking the rule counts as the block breaking it.
    if let E::OmmerHeader { source, .. } = rule {
        if one(name, source) {
            return true;
        }
    }
    let rlp = matches!(rule, E::Rlp(_) | E::TrailingBytes(_));
    if let Some(tx) = name.strip_prefix("TransactionException.") {
        let transaction =
            matches!(rule, E::Transaction { .. } | E::Signature { .. } | E::TransactionRule { .. });
        return match tx {
            // Blob gas above the block's limit is a header-level rule as well.
            "TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED" | "TYPE_3_TX_BLOB_COUNT_EXCEEDED" => {
                transaction || matches!(rule, E::BlobGasAboveMax { .. } | E::BlobGasUsed { .. })
            }
            // Forms the transaction decoder already refuses.
            "TYPE_3_TX_CONTRACT_CREATION"
            | "TYPE_4_TX_CONTRACT_CREATION"
            | "TYPE_NOT_SUPPORTED"
            | "TYPE_3_TX_WITH_FULL_BLOBS"
            | "TYPE_1_TX_PRE_FORK"
            | "TYPE_2_TX_PRE_FORK"
            | "TYPE_3_TX_PRE_FORK"
            | "TYPE_4_TX_PRE_FORK"
            | "TYPE_4_EMPTY_AUTHORIZATION_LIST"
            // alloy decodes gas prices as 128-bit: a larger one is an RLP error.
            | "GASLIMIT_PRICE_PRODUCT_OVERFLOW" => transaction || rlp,
            _ => transaction,
        };
    }
    let Some(block) = name.strip_prefix("BlockException.") else {
        return false;
    };
    match block {
        "RLP_STRUCTURES_ENCODING"
        | "RLP_INVALID_FIELD_OVERFLOW_64"
        | "RLP_INVALID_ADDRESS"
        | "RLP_WITHDRAWALS_NOT_READ" => rlp,
        "INCORRECT_BLOCK_FORMAT" => {
            rlp || matches!(rule, E::HeaderField { .. } | E::Withdrawals { .. })
        }
        "INCORRECT_EXCESS_BLOB_GAS" => {
            matches!(rule, E::ExcessBlobGas { .. }) || field(rule, "excessBlobGas")
        }
        "INCORRECT_BLOB_GAS_USED" | "BLOB_GAS_USED_ABOVE_LIMIT" => {
            matches!(rule, E::BlobGasUsed { .. } | E::BlobGasAboveMax { .. })
        }
        "INVALID_REQUESTS" => root(rule, "requestsHash") || field(rule, "requestsHash"),
        "INVALID_DEPOSIT_EVENT_LAYOUT" => matches!(rule, E::DepositLayout { .. }),
        "SYSTEM_CONTRACT_CALL_FAILED" => matches!(rule, E::SystemCall { .. }),
        "SYSTEM_CONTRACT_EMPTY" => matches!(rule, E::SystemContractMissing(_)),
        "INVALID_GASLIMIT" | "GASLIMIT_TOO_BIG" => {
            matches!(rule, E::GasLimit { .. } | E::GasLimitAboveMax(_))
        }
        "INVALID_GAS_USED" | "GAS_USED_OVERFLOW" => {
            matches!(rule, E::GasUsed { .. } | E::GasUsedAboveLimit { .. })
        }
        "EXTRA_DATA_INVALID_DAO" => matches!(rule, E::DaoExtraData),
        "EXTRA_DATA_TOO_BIG" => matches!(rule, E::ExtraDataTooLong(_)),
        "INVALID_BASEFEE_PER_GAS" => matches!(rule, E::BaseFee { .. }),
        "INVALID_BLOCK_TIMESTAMP_OLDER_THAN_PARENT" => matches!(rule, E::Timestamp { .. }),
        "INVALID_BLOCK_NUMBER" => matches!(rule, E::Number { .. }),
        "INVALID_DIFFICULTY" => matches!(rule, E::Difficulty { .. } | E::PostMerge(_)),
        "INVALID_WITHDRAWALS_ROOT" => root(rule, "withdrawalsRoot"),
        "INVALID_TRANSACTIONS_ROOT" => root(rule, "transactionsRoot"),
        "INVALID_RECEIPTS_ROOT" => root(rule, "receiptsRoot"),
        "INVALID_STATE_ROOT" => root(rule, "stateRoot"),
        "INVALID_LOG_BLOOM" => matches!(rule, E::LogsBloom { .. }),
        "INVALID_VERSIONED_HASHES" => matches!(rule, E::Transaction { .. }),
        "UNKNOWN_PARENT" | "UNKNOWN_PARENT_ZERO" => matches!(rule, E::UnknownParent(_)),
        "UNCLE_PARENT_INCORRECT" => matches!(rule, E::Ommer { .. } | E::OmmerHeader { .. }),
        "IMPORT_IMPOSSIBLE_UNCLES_OVER_PARIS" => {
            matches!(rule, E::PostMerge(_) | E::Ommer { .. })
        }
        // A block of the wrong era: whichever header rule of the other era it breaks first.
        "IMPORT_IMPOSSIBLE_DIFFICULTY_OVER_PARIS"
        | "IMPORT_IMPOSSIBLE_PARIS_WRONG_POS"
        | "IMPORT_IMPOSSIBLE_PARIS_WRONG_POW"
        | "IMPORT_IMPOSSIBLE_PARIS_OVER_SHANGHAI"
        | "IMPORT_IMPOSSIBLE_SHANGHAI"
        | "IMPORT_IMPOSSIBLE_LEGACY"
        | "IMPORT_IMPOSSIBLE_LEGACY_WRONG_PARENT"
        | "IMPORT_IMPOSSIBLE_LONDON_WRONG_PARENT" => matches!(
            rule,
            E::PostMerge(_)
                | E::Difficulty { .. }
                | E::HeaderField { .. }
                | E::Withdrawals { .. }
                | E::BaseFee { .. }
                | E::GasLimit { .. }
                | E::UnknownParent(_)
        ),
        // The header's hash is not what its contents hash to: the block is unknown to its
        // children, or its own fields are wrong.
        "INVALID_BLOCK_HASH" => true,
        _ => false,
    }
}

/// Whether a block's header commits to all its transactions but the last: ethereum/tests'
/// retesteth-filled blocks with an invalid transaction are built that way (the filler dropped
/// the invalid, last, transaction from the header's `transactionsRoot` but kept it in the
/// body), so the body rule breaks before the transaction runs. Such a rejection by the
/// transactions root stands for the expected transaction exception.
pub(crate) fn root_leaves_out_last_transaction(rlp: &[u8]) -> bool {
    let Ok(block) = Block::<TxEnvelope>::decode(&mut &rlp[..]) else {
        return false;
    };
    let transactions = &block.body.transactions;
    !transactions.is_empty()
        && calculate_transaction_root(&transactions[..transactions.len() - 1])
            == block.header.transactions_root
}
