//! Building the block's canonical [`StateChanges`] from the multi-version memory once every
//! transaction has committed, with all workers sharing the work.
//!
//! Each account's final value is already known (the committer folds every committed write,
//! see [`MvMemory::commit`]); what remains is comparing final values with the pre-block
//! state and putting the result in address order, in three phases that all workers share
//! ([`Finalizer::work`]):
//! 1. Workers take account shards from a counter, compare, build each account's change and
//!    sort each shard on its own: account shards split the addresses by their leading bits, so
//!    the shards one after the other are in address order.
//! 2. They take storage shards the same way and each sorts the changed slots it kept into one
//!    run.
//! 3. Once every worker has finished phase 2 (the one wait), they take address ranges of
//!    [`PARTS_SHARDS`] account shards each and attach the changed slots of the range, merged
//!    from the runs, to its rows, releasing the range's part of the multi-version memory.
//!
//! The caller only puts the ranges end to end ([`Finalizer::finish`]): the merge was 2%-3% of
//! a mainnet block's time on one core, with the other idle.

use super::{
    mv_memory::{FinalAccount, FinalValue, MvMemory},
    tx_db::base_account,
};
use crate::{error::ExecutionError, evm::DbError};
use alloy_primitives::{Address, U256};
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use parking_lot::{Mutex, RwLock};
use revm::state::AccountInfo;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Account shards per address range of phase 3.
const PARTS_SHARDS: usize = 8;
/// Address ranges of phase 3.
const PARTS: usize = MvMemory::SHARDS / PARTS_SHARDS;

/// One account after the block: its change, built by the worker that finalised its shard.
#[derive(Debug)]
struct Row {
    address: Address,
    /// The change, storage still empty (the merge attaches the slots).
    change: AccountChange,
    /// The account itself is as before the block: the change only goes in if storage changed.
    unchanged: bool,
}

/// A changed slot: address, slot, value.
type Slot = (Address, U256, U256);

/// Account changes in address order.
type Changes = Vec<(Address, AccountChange)>;

/// The shared state of one block's finalisation.
#[derive(Debug)]
pub(crate) struct Finalizer {
    /// The workers that call [`Self::work`]: phase 3 waits for all of them.
    workers: usize,
    next_account_shard: AtomicUsize,
    next_slot_shard: AtomicUsize,
    /// Workers that have finished phase 2.
    slots_done: AtomicUsize,
    next_part: AtomicUsize,
    /// Per account shard, its rows sorted by address.
    rows: Box<[Mutex<Vec<Row>>]>,
    /// One run of changed slots sorted by address and slot per worker.
    slots: RwLock<Vec<Vec<Slot>>>,
    /// Per address range, its changes in address order.
    parts: Box<[Mutex<Changes>]>,
    error: Mutex<Option<DbError>>,
}

fn view(info: &Option<AccountInfo>) -> Option<AccountState> {
    info.as_ref().map(AccountState::from)
}

impl Finalizer {
    /// The finalisation of a block that `workers` workers share: each of them must call
    /// [`Self::work`] (phase 3 waits for all).
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            workers,
            next_account_shard: AtomicUsize::new(0),
            next_slot_shard: AtomicUsize::new(0),
            slots_done: AtomicUsize::new(0),
            next_part: AtomicUsize::new(0),
            rows: (0..MvMemory::SHARDS).map(|_| Mutex::default()).collect(),
            slots: RwLock::default(),
            parts: (0..PARTS).map(|_| Mutex::default()).collect(),
            error: Mutex::default(),
        }
    }

    /// One worker's share of the three phases (see the module doc). Every worker of the block
    /// calls it once every transaction has committed; it returns when no range is left.
    pub(crate) fn work<S: StateSource + ?Sized>(&self, mv: &MvMemory, source: &S) {
        if let Err(error) = self.shards(mv, source) {
            self.error.lock().get_or_insert(error);
        }
        // Counted whatever happened, so that nobody waits for this worker in vain.
        self.slots_done.fetch_add(1, Ordering::AcqRel);
        let backoff = crossbeam_utils::Backoff::new();
        // The others are finishing their last storage shard (or have not started phase 1 yet:
        // every worker calls this once it sees the block committed).
        while self.slots_done.load(Ordering::Acquire) < self.workers {
            backoff.snooze();
        }
        if let Err(error) = self.merge_parts(mv, source) {
            self.error.lock().get_or_insert(error);
        }
    }

    /// Phases 1 and 2.
    fn shards<S: StateSource + ?Sized>(&self, mv: &MvMemory, source: &S) -> Result<(), DbError> {
        let mut finals: Vec<FinalAccount> = Vec::new();
        loop {
            let shard = self.next_account_shard.fetch_add(1, Ordering::Relaxed);
            if shard >= MvMemory::SHARDS {
                break;
            }
            finals.clear();
            mv.final_accounts(shard, &mut finals);
            // Sized exactly, as the shard's part of the multi-version memory is released.
            let mut rows = Vec::with_capacity(finals.len());
            for account in finals.drain(..) {
                let pre = match account.base {
                    Some(base) => base,
                    None => base_account(source, account.address)?,
                };
                let info = match account.value {
                    FinalValue::Known(value) => value,
                    FinalValue::CreditsOnBase(credits) => mv.apply_credits(pre.clone(), &credits),
                };
                let cleared = account.last_wipe.is_some()
                    && source.has_storage(account.address).map_err(DbError::Source)?;
                let (before, after) = (view(&pre), view(&info));
                let new_code = before.map(|b| b.code_hash) != after.map(|a| a.code_hash);
                rows.push(Row {
                    address: account.address,
                    unchanged: before == after && !cleared,
                    change: AccountChange {
                        info: after,
                        code: info
                            .filter(|_| new_code)
                            .and_then(|info| info.code)
                            .filter(|code| !code.is_empty()),
                        storage_cleared: cleared,
                        storage: BTreeMap::new(),
                    },
                });
            }
            // A shard's rows fit in the core's cache: sorting them is cheap, and no merge of
            // the workers' rows is needed afterwards.
            rows.sort_unstable_by_key(|row| row.address);
            *self.rows[shard].lock() = rows;
        }

        let mut kept: Vec<(Address, U256, U256)> = Vec::new();
        let mut written = Vec::new();
        loop {
            let shard = self.next_slot_shard.fetch_add(1, Ordering::Relaxed);
            if shard >= MvMemory::SHARDS {
                break;
            }
            mv.final_slots(shard, &mut written);
            kept.reserve(written.len());
            for (address, slot, value) in written.drain(..) {
                let before = if mv.wiped_below(address, usize::MAX) {
                    U256::ZERO
                } else {
                    source.storage(address, slot).map_err(DbError::Source)?
                };
                if value != before {
                    kept.push((address, slot, value));
                }
            }
        }
        // Storage shards split slots by a hash: each worker sorts what it kept, and the
        // caller merges one run per worker.
        // Compared in place: a key function would copy 52 bytes per comparison.
        kept.sort_unstable_by(|(a, a_slot, _), (b, b_slot, _)| {
            a.cmp(b).then_with(|| a_slot.cmp(b_slot))
        });
        self.slots.write().push(kept);
        Ok(())
    }

    /// Phase 3: takes address ranges until none is left.
    fn merge_parts<S: StateSource + ?Sized>(
        &self,
        mv: &MvMemory,
        source: &S,
    ) -> Result<(), DbError> {
        let runs = self.slots.read();
        loop {
            let part = self.next_part.fetch_add(1, Ordering::Relaxed);
            if part >= PARTS {
                return Ok(());
            }
            let shards = part * PARTS_SHARDS..(part + 1) * PARTS_SHARDS;
            // Nothing reads these account shards any more (every storage shard is done).
            for shard in shards.clone() {
                mv.release_accounts(shard);
            }
            let rows: Vec<Vec<Row>> = self.rows[shards.clone()]
                .iter()
                .map(|rows| std::mem::take(&mut *rows.lock()))
                .collect();
            let ranges = runs.iter().map(|run| {
                let start =
                    run.partition_point(|(a, _, _)| MvMemory::account_shard(a) < shards.start);
                let end = run.partition_point(|(a, _, _)| MvMemory::account_shard(a) < shards.end);
                run[start..end].iter().copied()
            });
            let changes = merge(rows.into_iter().flatten(), ranges.collect(), source)?;
            *self.parts[part].lock() = changes;
        }
    }

    /// The canonical changes: the address ranges end to end.
    pub(crate) fn finish(self) -> Result<StateChanges, ExecutionError> {
        if let Some(error) = self.error.into_inner() {
            return Err(match error {
                DbError::Source(source) => ExecutionError::StateAfterBlock { source },
                DbError::MissingBlockHash(_) => {
                    ExecutionError::Invariant("block hash read at finalize")
                }
            });
        }
        if self.next_part.into_inner() < PARTS {
            return Err(ExecutionError::Invariant("finalisation left address ranges unmerged"));
        }
        // The slot runs go before the changes are put end to end.
        drop(self.slots);
        let parts: Vec<_> = self.parts.into_vec().into_iter().map(Mutex::into_inner).collect();
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            out.extend(part);
        }
        Ok(StateChanges::from_sorted(out))
    }
}

/// The changes of one address range: its rows in address order, with the changed slots of
/// `runs` (each sorted by address and slot) attached.
fn merge<S: StateSource + ?Sized, I: Iterator<Item = Slot>>(
    rows: impl Iterator<Item = Row>,
    runs: Vec<I>,
    source: &S,
) -> Result<Changes, DbError> {
    let mut out = Changes::new();
    let mut slots = Merged::new(runs, |(address, slot, _): &Slot| (*address, *slot));
    let mut rows = rows.peekable();
    loop {
        // The next address: the smaller of the next row's and the next slot's.
        let address = match (rows.peek(), slots.peek()) {
            (None, None) => break,
            (Some(Row { address, .. }), None) | (None, Some((address, _, _))) => *address,
            (Some(row), Some((slot, _, _))) => row.address.min(*slot),
        };
        let row = rows.next_if(|row| row.address == address);
        let mut storage = BTreeMap::new();
        // In order, each insert goes to the rightmost leaf: cheaper than collecting them
        // (`from_iter` sorts a copy first).
        while let Some((_, slot, value)) = slots.next_if(|(a, _, _)| *a == address) {
            storage.insert(slot, value);
        }
        let change = match row {
            Some(row) if row.unchanged && storage.is_empty() => continue,
            Some(Row { change, .. }) => AccountChange { storage, ..change },
            // Storage changed, the account itself was not written: it is as before.
            None => AccountChange {
                info: view(&source.account(address).map_err(DbError::Source)?),
                code: None,
                storage_cleared: false,
                storage,
            },
        };
        out.push((address, change));
    }
    Ok(out)
}

/// The merge of a few sorted runs (one per worker) into one sorted sequence.
struct Merged<I: Iterator, K, F> {
    runs: Vec<std::iter::Peekable<I>>,
    key: F,
    _key: std::marker::PhantomData<K>,
}

impl<T, I: Iterator<Item = T>, K: Ord, F: Fn(&T) -> K> Merged<I, K, F> {
    fn new(runs: Vec<I>, key: F) -> Self {
        Self {
            runs: runs.into_iter().map(Iterator::peekable).collect(),
            key,
            _key: std::marker::PhantomData,
        }
    }

    /// The run whose next item is the smallest (runs are few: a linear scan).
    fn smallest(&mut self) -> Option<usize> {
        let mut best: Option<(usize, K)> = None;
        for (index, run) in self.runs.iter_mut().enumerate() {
            if let Some(item) = run.peek() {
                let key = (self.key)(item);
                if best.as_ref().is_none_or(|(_, smallest)| key < *smallest) {
                    best = Some((index, key));
                }
            }
        }
        best.map(|(index, _)| index)
    }

    fn peek(&mut self) -> Option<&T> {
        let index = self.smallest()?;
        self.runs[index].peek()
    }

    /// The smallest next item, if `accept` takes it.
    fn next_if(&mut self, accept: impl FnOnce(&T) -> bool) -> Option<T> {
        let index = self.smallest()?;
        self.runs[index].next_if(accept)
    }
}

#[cfg(test)]
mod tests {
    use super::Merged;

    #[test]
    fn merging_runs_yields_every_item_in_order() {
        let runs = vec![vec![1, 4, 9], vec![], vec![2, 3, 10, 11], vec![5]];
        let mut merged =
            Merged::new(runs.into_iter().map(Vec::into_iter).collect(), |item: &i32| *item);
        let mut out = Vec::new();
        // `next_if` declines without consuming.
        assert_eq!(merged.next_if(|item| *item > 1), None);
        while let Some(item) = merged.next_if(|_| true) {
            out.push(item);
        }
        assert_eq!(out, [1, 2, 3, 4, 5, 9, 10, 11], "smallest first, every item once");
        assert!(merged.peek().is_none());
    }
}
