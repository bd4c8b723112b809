//! Building the block's canonical [`StateChanges`] from the multi-version memory once every
//! transaction has committed, with all workers sharing the work.
//!
//! Each account's final value is already known (the committer folds every committed write,
//! see [`MvMemory::commit`]); what remains is comparing final values with the pre-block
//! state and putting the result in address order. Workers take shards from a counter, compare,
//! build each account's change and sort each shard on its own, in parallel
//! ([`Finalizer::work`]): account shards split the addresses by their leading bits, so the
//! shards one after the other are in address order. The caller then reads them in that order
//! and attaches the changed slots, merged from the workers' sorted runs
//! ([`Finalizer::finish`]).

use super::{
    mv_memory::{FinalAccount, FinalValue, MvMemory},
    tx_db::base_account,
};
use crate::evm::DbError;
use alloy_primitives::{Address, U256};
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use parking_lot::Mutex;
use revm::state::AccountInfo;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One account after the block: its change, built by the worker that finalised its shard.
#[derive(Debug)]
struct Row {
    address: Address,
    /// The change, storage still empty (the merge attaches the slots).
    change: AccountChange,
    /// The account itself is as before the block: the change only goes in if storage changed.
    unchanged: bool,
}

/// The shared state of one block's finalisation.
#[derive(Debug)]
pub(crate) struct Finalizer {
    next_account_shard: AtomicUsize,
    next_slot_shard: AtomicUsize,
    /// Per account shard, its rows sorted by address.
    rows: Box<[Mutex<Vec<Row>>]>,
    /// One run of changed slots sorted by address and slot per worker.
    slots: Mutex<Vec<Vec<(Address, U256, U256)>>>,
    error: Mutex<Option<DbError>>,
}

fn view(info: &Option<AccountInfo>) -> Option<AccountState> {
    info.as_ref().map(AccountState::from)
}

impl Default for Finalizer {
    fn default() -> Self {
        Self {
            next_account_shard: AtomicUsize::new(0),
            next_slot_shard: AtomicUsize::new(0),
            rows: (0..MvMemory::SHARDS).map(|_| Mutex::default()).collect(),
            slots: Mutex::default(),
            error: Mutex::default(),
        }
    }
}

impl Finalizer {
    /// Takes shards until none is left: compares their final values with the pre-block state.
    pub(crate) fn work<S: StateSource + ?Sized>(&self, mv: &MvMemory, source: &S) {
        if let Err(error) = self.work_inner(mv, source) {
            self.error.lock().get_or_insert(error);
        }
    }

    fn work_inner<S: StateSource + ?Sized>(
        &self,
        mv: &MvMemory,
        source: &S,
    ) -> Result<(), DbError> {
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
        self.slots.lock().push(kept);
        Ok(())
    }

    /// Merges the workers' rows into the canonical changes.
    pub(crate) fn finish<S: StateSource + ?Sized>(
        self,
        source: &S,
    ) -> Result<StateChanges, DbError> {
        if let Some(error) = self.error.into_inner() {
            return Err(error);
        }
        let shards: Vec<Vec<Row>> =
            self.rows.into_vec().into_iter().map(Mutex::into_inner).collect();
        let mut out: Vec<(Address, AccountChange)> =
            Vec::with_capacity(shards.iter().map(Vec::len).sum());
        let mut slots =
            Merged::new(self.slots.into_inner(), |(address, slot, _)| (*address, *slot));
        // Shard after shard is address order; each shard's memory goes as it is read.
        let mut rows = shards.into_iter().flatten().peekable();
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
        // The runs' memory goes before the map's nodes are allocated: holding both with `out`
        // made finalisation the peak of a block's heap.
        drop((rows, slots));
        Ok(StateChanges::from_sorted(out))
    }
}

/// The merge of a few sorted runs (one per worker) into one sorted sequence.
struct Merged<T, K, F> {
    runs: Vec<std::iter::Peekable<std::vec::IntoIter<T>>>,
    key: F,
    _key: std::marker::PhantomData<K>,
}

impl<T, K: Ord, F: Fn(&T) -> K> Merged<T, K, F> {
    fn new(runs: Vec<Vec<T>>, key: F) -> Self {
        Self {
            runs: runs.into_iter().map(|run| run.into_iter().peekable()).collect(),
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
        let mut merged = Merged::new(runs, |item: &i32| *item);
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
