//! Why a block is rejected: one variant per consensus rule, with what was found and what the
//! rule required.

use alloy_primitives::{Address, Bloom, B256, U256};
use lanes_executor::{ExecutionError, InvalidTx};
use lanes_state::SourceError;

/// A block that cannot be imported, with the block it is about.
#[derive(Debug, thiserror::Error)]
#[error("block {number} ({hash}): {rule}")]
pub struct ImportError {
    /// The block's number (0 when its RLP did not decode).
    pub number: u64,
    /// The block's hash (zero when its RLP did not decode).
    pub hash: B256,
    /// The rule it broke (boxed: the error stays small on the happy path).
    pub rule: Box<BlockError>,
}

/// The consensus rule a block breaks.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The block's RLP does not decode into a header and a body.
    #[error("RLP does not decode: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// RLP bytes follow the block.
    #[error("{0} bytes follow the block's RLP")]
    TrailingBytes(usize),
    /// The parent is not a known block.
    #[error("parent {0} is unknown")]
    UnknownParent(B256),
    /// The block is already in the chain.
    #[error("block is already imported")]
    AlreadyKnown,
    /// `number` is not the parent's plus one.
    #[error("number {got} is not the parent's {parent} plus one")]
    Number {
        /// The header's number.
        got: u64,
        /// The parent's number.
        parent: u64,
    },
    /// `timestamp` is not after the parent's.
    #[error("timestamp {got} is not after the parent's {parent}")]
    Timestamp {
        /// The header's timestamp.
        got: u64,
        /// The parent's timestamp.
        parent: u64,
    },
    /// `gasLimit` moved by 1/1024 of the parent's or more, or is below 5,000.
    #[error("gas limit {got} is out of bounds for the parent's {parent}")]
    GasLimit {
        /// The header's gas limit.
        got: u64,
        /// The parent's gas limit (doubled at the London block).
        parent: u64,
    },
    /// `gasLimit` is above 2^63 - 1 (EIP-1985).
    #[error("gas limit {0} is above 2^63 - 1 (EIP-1985)")]
    GasLimitAboveMax(u64),
    /// `gasUsed` is above `gasLimit`.
    #[error("gas used {gas_used} is above the gas limit {gas_limit}")]
    GasUsedAboveLimit {
        /// The header's gas used.
        gas_used: u64,
        /// The header's gas limit.
        gas_limit: u64,
    },
    /// `extraData` is longer than 32 bytes.
    #[error("extra data is {0} bytes, above 32")]
    ExtraDataTooLong(usize),
    /// The DAO fork's blocks must carry `dao-hard-fork` as extra data (EIP-779).
    #[error("extra data is not \"dao-hard-fork\" in the ten blocks from the DAO fork")]
    DaoExtraData,
    /// `baseFeePerGas` differs from EIP-1559's rule (or is present or missing wrongly).
    #[error("base fee {got:?} != expected {expected:?} (EIP-1559)")]
    BaseFee {
        /// The header's base fee.
        got: Option<u64>,
        /// What EIP-1559 gives from the parent.
        expected: Option<u64>,
    },
    /// `difficulty` differs from the proof-of-work difficulty rule.
    #[error("difficulty {got} != expected {expected}")]
    Difficulty {
        /// The header's difficulty.
        got: U256,
        /// What the fork's difficulty formula gives.
        expected: U256,
    },
    /// After the merge, `difficulty`, `nonce` must be zero and there are no ommers (EIP-3675).
    #[error("post-merge header has {0} (EIP-3675)")]
    PostMerge(&'static str),
    /// A header field the block's fork requires is missing, or one it forbids is present.
    #[error("header field {field} is {} for this fork", if *.present { "present" } else { "missing" })]
    HeaderField {
        /// The field.
        field: &'static str,
        /// Whether it was present.
        present: bool,
    },
    /// `excessBlobGas` differs from EIP-4844's rule (with EIP-7691 and EIP-7918).
    #[error("excess blob gas {got} != expected {expected} (EIP-4844)")]
    ExcessBlobGas {
        /// The header's value.
        got: u64,
        /// What the rule gives from the parent.
        expected: u64,
    },
    /// `blobGasUsed` differs from the blob gas of the transactions, or is above the limit.
    #[error("blob gas used {got} != the transactions' {expected} (EIP-4844)")]
    BlobGasUsed {
        /// The header's value.
        got: u64,
        /// The sum over the block's blob transactions.
        expected: u64,
    },
    /// The block carries more blob gas than the fork allows.
    #[error("blob gas {got} is above the block's maximum {max} (EIP-4844/EIP-7691)")]
    BlobGasAboveMax {
        /// The transactions' blob gas.
        got: u64,
        /// The fork's maximum.
        max: u64,
    },
    /// The block's RLP is larger than EIP-7934 allows.
    #[error("block RLP is {size} bytes, above the {max}-byte limit (EIP-7934)")]
    BlockTooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A root or hash committed in the header differs from the body's or the execution's.
    #[error("{field} {got} != computed {expected}")]
    Root {
        /// Which: transactionsRoot, ommersHash, withdrawalsRoot, receiptsRoot, requestsHash,
        /// stateRoot.
        field: &'static str,
        /// The header's value.
        got: B256,
        /// The computed value.
        expected: B256,
    },
    /// `logsBloom` differs from the receipts' logs.
    #[error("logs bloom {got} != computed {expected}")]
    LogsBloom {
        /// The header's bloom.
        got: Box<Bloom>,
        /// The bloom of the logs.
        expected: Box<Bloom>,
    },
    /// `gasUsed` differs from the transactions' gas.
    #[error("gas used {got} != the transactions' {expected}")]
    GasUsed {
        /// The header's value.
        got: u64,
        /// The execution's.
        expected: u64,
    },
    /// More than two ommers, an ommer too old or too young, repeated, an ancestor, already
    /// included, or with an unknown parent.
    #[error("ommer {index}: {reason}")]
    Ommer {
        /// Position in the block's ommer list.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An ommer's header breaks a header rule.
    #[error("ommer {index}: {source}")]
    OmmerHeader {
        /// Position in the block's ommer list.
        index: usize,
        /// The rule.
        source: Box<BlockError>,
    },
    /// Withdrawals before Shanghai or none after.
    #[error("withdrawals are {} for this fork (EIP-4895)", if *.present { "present" } else { "missing" })]
    Withdrawals {
        /// Whether the body has them.
        present: bool,
    },
    /// A transaction's signature does not recover a sender.
    #[error("transaction {tx}: signature does not recover a sender")]
    Signature {
        /// Index in the block.
        tx: usize,
    },
    /// A transaction is invalid in this block (nonce, funds, fee, gas, type for the fork...).
    #[error("transaction {tx}: {source}")]
    Transaction {
        /// Index in the block.
        tx: usize,
        /// Why.
        source: InvalidTx,
    },
    /// A transaction breaks a block-level rule revm does not check (EIP-155 before Spurious
    /// Dragon).
    #[error("transaction {tx}: {reason}")]
    TransactionRule {
        /// Index in the block.
        tx: usize,
        /// Why.
        reason: &'static str,
    },
    /// A request system call (EIP-7002, EIP-7251) reverted or halted, or revm could not run a
    /// system call.
    #[error("system call to {contract}: {failure}")]
    SystemCall {
        /// The system contract.
        contract: Address,
        /// What went wrong.
        failure: SystemCallFailure,
    },
    /// A deposit contract log does not have the layout EIP-6110 requires.
    #[error("deposit log {log}: {reason} (EIP-6110)")]
    DepositLayout {
        /// Position among the block's deposit contract logs.
        log: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A system contract that must exist has no code (EIP-7002, EIP-7251).
    #[error("system contract {0} has no code")]
    SystemContractMissing(Address),
    /// Execution stopped the block (state source failure, panic, broken invariant).
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// The state could not be read.
    #[error("state: {0}")]
    State(SourceError),
}

/// How a system call failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemCallFailure {
    /// It reverted.
    #[error("reverted")]
    Reverted,
    /// It halted (out of gas, invalid opcode, ...).
    #[error("halted: {0:?}")]
    Halted(revm::context_interface::result::HaltReason),
    /// revm refused to run it.
    #[error("the EVM failed: {0}")]
    Evm(SourceError),
}

impl BlockError {
    /// A root mismatch.
    pub(crate) fn root(field: &'static str, got: B256, expected: B256) -> Self {
        Self::Root { field, got, expected }
    }
}
