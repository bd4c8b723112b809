//! The pieces both engines share, so that they apply exactly the same rules: the revm
//! configuration of a block, the block-level limits checked before each transaction, how a
//! revm result becomes a [`TxOutcome`], and what a transaction's journal means for an account
//! (the commit semantics of revm's own `State`, EIP-161 included).

use crate::{
    block::BlockContext,
    error::ExecutionError,
    outcome::{InvalidTx, TxOutcome, TxStatus},
};
use alloy_primitives::U256;
use lanes_state::SourceError;
use revm::{
    context::{CfgEnv, TxEnv},
    context_interface::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction},
    database_interface::DBErrorMarker,
    primitives::{eip4844::GAS_PER_BLOB, hardfork::SpecId},
    state::{Account, AccountInfo},
};

/// The error type of the executors' revm databases.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// The state source failed.
    #[error(transparent)]
    Source(SourceError),
    /// `BLOCKHASH` asked for an unknown height.
    #[error("block hash {0} is unknown")]
    MissingBlockHash(u64),
}

impl DBErrorMarker for DbError {}

/// The revm configuration for a block.
pub(crate) fn cfg_env(block: &BlockContext) -> CfgEnv {
    let mut cfg =
        CfgEnv::new().with_chain_id(block.chain_id).with_spec_and_mainnet_gas_params(block.spec);
    cfg.max_blobs_per_tx = block.blob.max_blobs_per_tx.or(Some(
        if block.spec.is_enabled_in(SpecId::OSAKA) || !block.spec.is_enabled_in(SpecId::PRAGUE) {
            6
        } else {
            9
        },
    ));
    cfg
}

/// Blob gas a transaction uses.
pub(crate) fn blob_gas_of(tx: &TxEnv) -> u64 {
    tx.blob_hashes.len() as u64 * GAS_PER_BLOB
}

/// Gas and blob gas used so far in a block, and the checks against the block's limits that
/// come before a transaction is executed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlockGas {
    pub(crate) gas_used: u64,
    pub(crate) blob_gas_used: u64,
}

impl BlockGas {
    /// Checks that `tx` fits in what the block has left.
    pub(crate) fn check(&self, block: &BlockContext, tx: &TxEnv) -> Result<(), InvalidTx> {
        let available = block.header.gas_limit.saturating_sub(self.gas_used);
        if tx.gas_limit > available {
            return Err(InvalidTx::BlockGasExceeded { gas_limit: tx.gas_limit, available });
        }
        if let Some(max) = block.blob.max_blob_gas_per_block {
            let available = max.saturating_sub(self.blob_gas_used);
            let blob_gas = blob_gas_of(tx);
            if blob_gas > available {
                return Err(InvalidTx::BlobGasExceeded { blob_gas, available });
            }
        }
        Ok(())
    }

    /// Adds a valid transaction's gas and returns its outcome with the cumulative gas set.
    pub(crate) fn add(&mut self, tx: &TxEnv, result: ExecutionResult<HaltReason>) -> TxOutcome {
        let gas_used = result.tx_gas_used();
        self.gas_used += gas_used;
        let blob_gas_used = blob_gas_of(tx);
        self.blob_gas_used += blob_gas_used;
        let created_address = result.created_address();
        let (status, logs, output) = match result {
            ExecutionResult::Success { reason, logs, output, .. } => {
                (TxStatus::Success(reason), logs, output.into_data())
            }
            ExecutionResult::Revert { output, logs, .. } => (TxStatus::Revert, logs, output),
            ExecutionResult::Halt { reason, logs, .. } => {
                (TxStatus::Halt(reason), logs, Default::default())
            }
        };
        TxOutcome {
            status,
            gas_used,
            cumulative_gas_used: self.gas_used,
            blob_gas_used,
            logs,
            output,
            created_address,
        }
    }
}

/// Sorts a revm error into "this transaction is invalid" and "this block cannot run".
pub(crate) fn classify_error(
    tx: usize,
    error: EVMError<DbError, InvalidTransaction>,
) -> Result<InvalidTx, ExecutionError> {
    match error {
        EVMError::Transaction(invalid) => Ok(InvalidTx::Rejected(invalid)),
        EVMError::Header(header) => Err(ExecutionError::InvalidHeader(header)),
        EVMError::Database(DbError::Source(source)) => Err(ExecutionError::State { tx, source }),
        EVMError::Database(DbError::MissingBlockHash(number)) => {
            Err(ExecutionError::MissingBlockHash { tx, number })
        }
        EVMError::Custom(message) => Err(ExecutionError::Evm { tx, message }),
        EVMError::CustomAny(any) => Err(ExecutionError::Evm { tx, message: any.to_string() }),
    }
}

/// What a transaction did to one account, following revm's own commit rules.
#[derive(Debug)]
pub(crate) enum AccountEffect<'a> {
    /// Self-destructed, or touched while empty (EIP-161): gone, storage wiped.
    Destroyed,
    /// Created by this transaction: new info, storage wiped then set to `changed_slots`.
    Created(&'a AccountInfo),
    /// Updated in place: new info, `changed_slots` written over the old storage.
    Changed(&'a AccountInfo),
}

impl<'a> AccountEffect<'a> {
    /// The effect of `account` from a finished transaction's journal, or `None` when the
    /// transaction only read it.
    pub(crate) fn of(account: &'a Account) -> Option<Self> {
        if !account.is_touched() {
            return None;
        }
        if account.is_selfdestructed() {
            return Some(Self::Destroyed);
        }
        if account.is_created() {
            return Some(Self::Created(&account.info));
        }
        if account.is_empty() {
            // EIP-161; revm's journal already kept pre-Spurious-Dragon empty accounts alive by
            // marking them created or untouched.
            return Some(Self::Destroyed);
        }
        Some(Self::Changed(&account.info))
    }
}

/// The slots of `account` whose value the transaction changed.
pub(crate) fn changed_slots(account: &Account) -> impl Iterator<Item = (U256, U256)> + '_ {
    account.storage.iter().filter(|(_, s)| s.is_changed()).map(|(k, s)| (*k, s.present_value))
}
