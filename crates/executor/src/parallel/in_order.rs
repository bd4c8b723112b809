//! Windows of transactions the committer runs in order on the sequential engine.
//!
//! When most transactions fail validation (every one of them touches one hot slot, say),
//! speculation only wastes work, and so would running the transactions one by one through
//! the multi-version memory: recording reads, publishing writes and folding them cost about a
//! quarter of a cheap transaction. So while the scheduler's throttle is on, the committer takes
//! a *window* of the next transactions nobody has started and runs them with plain revm
//! ([`execute_in_order`], the sequential engine's own loop) on an overlay over the committed
//! prefix ([`PrefixSource`]: every transaction below the window is committed, so what the
//! multi-version memory holds below it is final). The window's net writes are then published
//! as the writes of its last transaction: a later transaction reads them like any other
//! transaction's, and finalisation folds them like any other.

use super::{
    mv_memory::{AccountWrite, MvMemory, TxIdx, WriteSet},
    tx_db::{read_account, read_slot},
    Shared,
};
use crate::{
    error::ExecutionError,
    evm::{BlockGas, DbError},
    outcome::TxResult,
    sequential::{execute_in_order, InOrder, OverlayDb, Tracking},
};
use alloy_primitives::{Address, B256, U256};
use lanes_state::{SourceError, StateSource};
use revm::{bytecode::Bytecode, state::AccountInfo};
use std::ops::Range;

/// The state after the committed prefix `..at`: the multi-version memory's versions below
/// `at` over the pre-block state. Only valid while every transaction below `at` is committed.
#[derive(Debug)]
pub(crate) struct PrefixSource<'a, S: ?Sized> {
    mv: &'a MvMemory,
    source: &'a S,
    at: TxIdx,
}

/// The source's error, whatever the multi-version memory wrapped it in.
fn source_error(error: DbError) -> SourceError {
    match error {
        DbError::Source(error) => error,
        // Account and slot reads never ask for a block hash.
        other => other.into(),
    }
}

impl<S: StateSource + ?Sized> StateSource for PrefixSource<'_, S> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        read_account(self.mv, self.source, address, self.at)
            .map(|(value, _)| value)
            .map_err(source_error)
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        // Accounts come with their code (see `base_account` and the writes); code is
        // immutable per hash.
        self.source.code(code_hash)
    }

    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError> {
        read_slot(self.mv, self.source, address, index, self.at)
            .map(|(value, _)| value)
            .map_err(source_error)
    }

    fn has_storage(&self, address: Address) -> Result<bool, SourceError> {
        // Asked only for accounts without code and nonce (EIP-7610), which cannot have written
        // storage of their own: the pre-block storage, unless a transaction below wiped it.
        Ok(!self.mv.wiped_below(address, self.at) && self.source.has_storage(address)?)
    }
}

/// Runs `window` (transactions nobody else will execute, every transaction below committed)
/// in order on the sequential engine, appending their results and counting their gas, and
/// publishes their net writes as the writes of the window's last transaction.
pub(crate) fn run_window<S: StateSource + ?Sized>(
    shared: &Shared<'_, S>,
    window: Range<TxIdx>,
    gas: &mut BlockGas,
    results: &mut Vec<TxResult>,
    executions: &mut usize,
) -> Result<(), ExecutionError> {
    let Some(last) = window.end.checked_sub(1).filter(|last| *last >= window.start) else {
        return Ok(());
    };
    let prefix = PrefixSource { mv: &shared.mv, source: shared.source, at: window.start };
    let block = shared.block;
    let db = OverlayDb::new(&prefix, &block.context.block_hashes, 2 * window.len());
    let totals = &mut InOrder { gas, results, executions, tx_times: None };
    let db = execute_in_order(block, shared.cfg.clone(), window, db, totals)?;
    publish_overlay(&shared.mv, last, db);
    Ok(())
}

/// Publishes the net writes of transactions run in order on `db` (everything up to `last`
/// committed) as the writes of `last`.
pub(crate) fn publish_overlay<S: StateSource + ?Sized, T: Tracking>(
    mv: &MvMemory,
    last: TxIdx,
    db: OverlayDb<'_, S, T>,
) {
    let (accounts, storage) = db.into_writes();
    let mut writes = WriteSet::default();
    writes.accounts.reserve(accounts.len());
    for (address, value) in accounts {
        writes.accounts.push((address, AccountWrite::Absolute(value.map(Box::new))));
    }
    for (address, overlay) in storage {
        if overlay.cleared {
            writes.wipes.push(address);
        }
        writes
            .storage
            .extend(overlay.slots.into_iter().map(|(slot, value)| (address, slot, value)));
    }
    // Nothing will retract or checkpoint these writes: they are committed as they end.
    mv.publish(last, &mut writes, &mut Vec::new(), &mut Vec::new());
}
