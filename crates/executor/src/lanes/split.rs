//! Splitting one sender's transactions over the lanes: a block most of whose transactions
//! come from one sender (an exchange or a mining pool paying out) runs in contiguous
//! *segments*, one per lane, each lane starting from an assumed value of the sender.
//!
//! One sender's transactions are a strict chain through its nonce and balance, so the lanes'
//! usual plan (each sender in one lane) runs such a block on one lane, and the parallel engine
//! one transaction after the other. But a transaction of the sender sees the sender's balance
//! only through revm's check that it covers the most the transaction may cost, unless its
//! code reads it (`BALANCE`); what the transaction does and what it takes from the sender
//! are then the same for any balance that passes the check. So a lane can run the sender's
//! transactions from any balance *no larger than the true one*, as long as none reads it:
//!
//! - **Assumed start.** Lane `l` runs the block's transactions `bounds[l]..bounds[l + 1]`,
//!   from the sender's nonce plus its transactions before the segment, and its balance less
//!   the most each of them may take (`max_balance_spending`: value, gas limit at the fee cap,
//!   blob fees). The first lane starts from the true value, pays the beneficiary as revm does
//!   (the sender may be the beneficiary) and defers nothing.
//! - **While it runs**, a later lane stops at a transaction whose result may depend on the
//!   assumed value: one of the sender's that creates a contract or carries EIP-7702
//!   authorizations (rare in payouts, and they change accounts by the sender's nonce and
//!   code; kept out rather than reasoned about), that revm rejected (the true balance may
//!   cover it), or whose code ran `BALANCE` of the sender (the lane's `BALANCE` is watched:
//!   `run.rs`); and any other transaction that touched the sender. The round is cut there;
//!   the next starts from it.
//! - **After the round**, lane by lane in block order: the true value at a lane's start is
//!   the lane before's final value, corrected by that lane's difference (true start less
//!   assumed start). It must have the assumed nonce and code and at least the assumed balance,
//!   else the round is cut at the lane's first access to the sender. Then the sender's final
//!   value, corrected, replaces the assumed one in the last lane that wrote it (with the
//!   round's start as its value before), and leaves every other lane.
//!
//! A sender that is the beneficiary also receives the fees of the later lanes' other
//! transactions, deferred as in any round and credited after it: a read of the sender other
//! than a transaction of its own that ran no `BALANCE` of it (`SenderRun::strict`) after a
//! deferred fee cuts the round, as any read of the beneficiary does.
//!
//! The other locations are checked as in any round: a read by one lane of what an earlier
//! lane wrote cuts there. The segments run in one epoch each (an epoch spans the same range
//! of the block in every lane; a segment is a different range in each), so only a later
//! lane keeps an undo log for its whole segment; the first keeps none unless the block's gas
//! check may cut it.

use super::{
    log::{LaneDb, Mark, NONE},
    run::Lane,
};
use crate::{
    block::Block,
    error::ExecutionError,
    policy::MIN_CHAIN_PARALLELISM,
    sequential::{Loaded, OverlayDb},
};
use alloy_primitives::{Address, B256, U256};
use lanes_state::StateSource;
use revm::{
    context::TxEnv, context_interface::Transaction, primitives::KECCAK_EMPTY, state::AccountInfo,
};

/// A segment shorter than this is not worth a lane.
pub(crate) const MIN_SEGMENT: usize = 12;

/// The part of the sender's value the lanes assume and check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SenderValue {
    pub(crate) nonce: u64,
    pub(crate) balance: U256,
    pub(crate) code_hash: B256,
}

impl SenderValue {
    fn of(info: &AccountInfo) -> Self {
        Self { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash }
    }

    /// `self` (a value derived from `assumed`) in the world where the start was `truth`.
    fn corrected(self, assumed: &SenderValue, truth: &SenderValue) -> Self {
        Self {
            balance: self.balance.saturating_add(truth.balance).saturating_sub(assumed.balance),
            ..self
        }
    }

    /// Whether a lane that assumed `assumed` at its start ran correctly from `self`.
    fn covers(&self, assumed: &SenderValue) -> bool {
        self.nonce == assumed.nonce
            && self.code_hash == assumed.code_hash
            && self.balance >= assumed.balance
    }
}

/// A round that splits one sender's transactions into contiguous segments.
#[derive(Debug)]
pub(crate) struct Split {
    /// The sender.
    pub(crate) sender: Address,
    /// Lane `l` runs `bounds[l]..bounds[l + 1]`.
    bounds: Vec<usize>,
    /// What each lane assumes of the sender at its start (lane 0: the true value).
    assumed: Vec<SenderValue>,
    /// The sender's account at the round's start.
    start: AccountInfo,
}

/// What a lane of a split round did with the sender's value while it ran.
#[derive(Clone, Debug, Default)]
pub(crate) struct SenderRun {
    /// The transaction at which the lane stopped: its result may depend on the assumption.
    wrong_at: Option<u32>,
    /// Transactions that read the sender other than as the sender of a payment that runs no
    /// code, in order.
    strict: Vec<u32>,
}

/// What a transaction weighs when the block is cut into segments: a guess at the gas it uses.
/// A payment (no calldata) uses 21,000 whatever its limit (payouts set limits of 50,000 to
/// 210,000); a call is taken at its limit, up to [`CALL_WEIGHT`] (bots ask for millions and use
/// a fraction).
fn weight(tx: &TxEnv) -> u64 {
    let guess = if tx.kind.is_call() && tx.data.is_empty() { 21_000 } else { CALL_WEIGHT };
    tx.gas_limit.min(guess)
}

/// The most a call weighs in [`weight`].
const CALL_WEIGHT: u64 = 200_000;

impl Split {
    /// A split of `block`'s transactions from `start` on over `lanes` lanes, reading the state
    /// `base` leaves over `source`, when one sender has so many of them that the sender plan
    /// would cap the round below [`MIN_CHAIN_PARALLELISM`]; `None` otherwise, or when the
    /// sender's start cannot be assumed (its balance cannot cover the assumed costs, it has
    /// code, it is the beneficiary).
    pub(crate) fn plan<S: StateSource + ?Sized>(
        block: &Block,
        start: usize,
        lanes: usize,
        base: &OverlayDb<'_, S>,
        source: &S,
    ) -> Option<Self> {
        let rest = &block.transactions[start..];
        let lanes = lanes.min(rest.len() / MIN_SEGMENT);
        if lanes < 2 {
            return None;
        }
        let (sender, count) = crate::policy::majority_sender(rest)?;
        if (rest.len() as f64) >= MIN_CHAIN_PARALLELISM * count as f64 {
            return None;
        }
        let state = |address: Address| match base.loaded(&address) {
            Some(now) => Some(now.clone()),
            None => source.account(address).ok(),
        };
        let start_info = state(sender)??;
        if start_info.code_hash != KECCAK_EMPTY {
            return None;
        }
        // Segments of about equal weight.
        let total: u64 = rest.iter().map(weight).sum();
        let mut bounds = vec![start];
        let mut gas = 0u64;
        for (i, tx) in rest.iter().enumerate() {
            let next = bounds.len() as u64;
            if next < lanes as u64 && gas as u128 * lanes as u128 >= total as u128 * next as u128 {
                bounds.push(start + i);
            }
            gas += weight(tx);
        }
        bounds.push(block.transactions.len());
        bounds.dedup();
        if bounds.len() < 3 {
            return None;
        }
        // What each lane assumes at its start: the sender's value less the most that every
        // transaction of the sender before the lane's segment may take.
        let mut value = SenderValue::of(&start_info);
        let mut assumed = vec![value];
        let mut next = 1;
        for (i, tx) in rest.iter().enumerate() {
            let index = start + i;
            while next + 1 < bounds.len() && bounds[next] == index {
                assumed.push(value);
                next += 1;
            }
            if next + 1 == bounds.len() {
                break;
            }
            if tx.caller == sender {
                value.balance = value.balance.checked_sub(tx.max_balance_spending().ok()?)?;
                value.nonce = value.nonce.checked_add(1)?;
            }
        }
        Some(Self { sender, bounds, assumed, start: start_info })
    }

    /// The lanes of the split.
    pub(crate) fn lanes(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The transactions lane `lane` runs (none for a lane beyond the split's).
    pub(crate) fn segment(&self, lane: usize) -> std::ops::Range<usize> {
        match (self.bounds.get(lane), self.bounds.get(lane + 1)) {
            (Some(start), Some(end)) => *start..*end,
            _ => 0..0,
        }
    }

    /// The lane that runs transaction `index`.
    pub(crate) fn lane_at(&self, index: usize) -> usize {
        self.bounds[1..].partition_point(|bound| *bound <= index)
    }

    /// The account lane `lane` reads for the sender at its start (`None`: the true one).
    pub(crate) fn assumed_account(&self, lane: usize) -> Option<AccountInfo> {
        let assumed = self.assumed.get(lane).filter(|_| lane > 0)?;
        Some(AccountInfo { balance: assumed.balance, nonce: assumed.nonce, ..self.start.clone() })
    }

    /// Before lane `me` runs `tx` (transaction `index`): whether it may. A contract creation
    /// or an EIP-7702 authorization by the sender depends on the sender's exact value (a new
    /// contract's address, an authority's nonce).
    pub(crate) fn before(&self, me: usize, index: usize, tx: &TxEnv, run: &mut SenderRun) -> bool {
        if tx.caller != self.sender || (tx.kind.is_call() && tx.authorization_list.is_empty()) {
            return true;
        }
        self.needs_exact(me, index, run)
    }

    /// After lane `me` ran transaction `index`: whether it may go on. A transaction of the
    /// sender that revm rejected, or whose code read the sender's balance (`balance_read`),
    /// and any other transaction that touched the sender, needed the exact value.
    pub(crate) fn after<S: StateSource + ?Sized>(
        &self,
        me: usize,
        index: usize,
        tx: &TxEnv,
        rejected: bool,
        db: &LaneDb<'_, S>,
        run: &mut SenderRun,
    ) -> bool {
        let strict = if tx.caller == self.sender {
            rejected || db.track.balance_read
        } else {
            db.accounts
                .get(&self.sender)
                .is_some_and(|loaded| loaded.mark.last_read == index as u32)
        };
        !strict || self.needs_exact(me, index, run)
    }

    /// Transaction `index` of lane `me` needs the sender's exact value: whether the lane may
    /// go on (only the first lane has it; a later lane stops, and the next round starts there).
    fn needs_exact(&self, me: usize, index: usize, run: &mut SenderRun) -> bool {
        let index = index as u32;
        if run.strict.last() != Some(&index) {
            run.strict.push(index);
        }
        if me == 0 {
            return true;
        }
        run.wrong_at = Some(index);
        false
    }

    /// Whether lane `me` (`mine`) only paid `address`, which an earlier lane (`earlier`) wrote:
    /// then their credits add up, and the read is no conflict. So when the account is neither
    /// the sender nor the beneficiary, was not empty at the round's start (the cost of a call
    /// with value to it, and what `EXTCODEHASH` of it returns, do not depend on how much it
    /// holds), no lane changed its nonce or code, and no transaction of the lane sent from it
    /// or ran an instruction that reads or spends its balance (watched: `watch.rs`). Its code
    /// may run: an exchange's deposit contract forwarding to its wallet contract.
    pub(crate) fn credit_only<S: StateSource + ?Sized>(
        &self,
        block: &Block,
        me: usize,
        address: &Address,
        mine: &LaneDb<'_, S>,
        earlier: &[&LaneDb<'_, S>],
    ) -> bool {
        if me == 0 || *address == self.sender || *address == block.context.header.beneficiary {
            return false;
        }
        let Ok(Some(start)) = mine.source().account(*address) else { return false };
        if start.is_empty() {
            return false;
        }
        let kept = |db: &&LaneDb<'_, S>| {
            db.accounts.get(address).is_none_or(|loaded| {
                loaded
                    .now
                    .as_ref()
                    .is_some_and(|now| now.nonce == start.nonce && now.code_hash == start.code_hash)
            })
        };
        kept(&mine)
            && earlier.iter().all(kept)
            && !mine.track.balance_reads.iter().any(|(read, _)| read == address)
            && !block.transactions[self.segment(me)].iter().any(|tx| tx.caller == *address)
    }

    /// After the lanes were rolled back to `cut`: each account of `credited` (only paid by a
    /// later lane, see [`Self::credit_only`]) gets what every lane below the cut added to it
    /// (or took from it: the lanes that ran from its true value), in the last lane that
    /// changed it, and leaves every other lane.
    pub(crate) fn settle_credits<S: StateSource + ?Sized>(
        &self,
        lanes: &mut [Lane<'_, S>],
        cut: usize,
        mut credited: Vec<Address>,
    ) -> Result<(), ExecutionError> {
        credited.sort_unstable();
        credited.dedup();
        let kept = self.bounds.iter().take(self.lanes()).filter(|start| **start < cut).count();
        for address in credited {
            let Some(source) = lanes.iter().find_map(|lane| lane.db.as_ref()).map(|db| db.source())
            else {
                break;
            };
            let start = source
                .account(address)
                .map_err(|source| ExecutionError::StateAfterBlock { source })?
                .map_or(U256::ZERO, |info| info.balance);
            let mut total = start;
            let mut writer = None;
            for (l, lane) in lanes.iter().enumerate().take(kept) {
                let Some(loaded) = lane.db.as_ref().and_then(|db| db.accounts.get(&address)) else {
                    continue;
                };
                // What the lane added (a kept lane that is not the later one, which only paid,
                // may have spent some): the running sum is the account's true balance after
                // the lane, never negative.
                let now = loaded.now.as_ref().map_or(U256::ZERO, |info| info.balance);
                total = total
                    .checked_add(now)
                    .and_then(|sum| sum.checked_sub(start))
                    .ok_or(ExecutionError::Invariant("a split round's credits sum below zero"))?;
                // The lane whose value the merge takes: one that changed it (`absorb`).
                if loaded.mark.last_write != NONE {
                    writer = Some(l);
                }
            }
            for (l, lane) in lanes.iter_mut().enumerate() {
                let Some(db) = lane.db.as_mut() else { continue };
                if Some(l) == writer {
                    if let Some(now) = db.accounts.get_mut(&address).and_then(|l| l.now.as_mut()) {
                        now.balance = total;
                    }
                } else {
                    db.accounts.remove(&address);
                }
            }
        }
        Ok(())
    }

    /// The first transaction of lane `run` that read the sender after `after` in a way that
    /// depends on its exact value: what a deferred fee for the sender (the beneficiary) makes
    /// stale.
    pub(crate) fn strict_read_after(run: &SenderRun, after: u32) -> Option<u32> {
        run.strict.iter().copied().find(|at| *at > after)
    }

    /// The true value of the sender at the end of each lane below `cut`, in order, from the
    /// lanes' final values (after any roll-back to `cut`), and the cut it allows: the first
    /// access to the sender of a lane whose start does not hold, or the transaction that
    /// trusted a start that was not exact, or where a lane stopped.
    fn walk<S: StateSource + ?Sized>(
        &self,
        lanes: &[Lane<'_, S>],
        mut cut: usize,
    ) -> (usize, SenderValue, Option<usize>) {
        let mut truth = SenderValue::of(&self.start);
        let mut writer = None;
        for (l, lane) in lanes.iter().enumerate().take(self.lanes()) {
            if self.bounds[l] >= cut {
                break;
            }
            let assumed = &self.assumed[l];
            let entry = lane.db.as_ref().and_then(|db| db.accounts.get(&self.sender));
            if l > 0 {
                let run = &lane.sender;
                if let Some(wrong) = run.wrong_at {
                    cut = cut.min(wrong as usize);
                }
                if let Some(first) = entry.map(|loaded| loaded.mark.first_read) {
                    if !truth.covers(assumed) {
                        cut = cut.min(first as usize);
                    }
                }
            }
            let changed = |loaded: &Loaded<Mark>| loaded.mark.last_write != NONE;
            match entry.map(|loaded| (loaded.now.as_ref().map(SenderValue::of), changed(loaded))) {
                Some((Some(value), written)) => {
                    // Lane 0 read the true value; a later lane, a value as much below it as its
                    // start was.
                    truth = if l == 0 { value } else { value.corrected(assumed, &truth) };
                    if written {
                        writer = Some(l);
                    }
                }
                // The sender is gone (it cannot be, once it has sent a transaction): nothing
                // from the lane's first access to it on is kept.
                Some((None, _)) => {
                    let first =
                        entry.map_or(self.bounds[l], |loaded| loaded.mark.first_read as usize);
                    cut = cut.min(first);
                    break;
                }
                None => {}
            }
            if cut < self.bounds[l + 1] {
                break;
            }
        }
        (cut, truth, writer)
    }

    /// The cut the sender's values allow (no later than `cut`, the round's own).
    pub(crate) fn check<S: StateSource + ?Sized>(
        &self,
        lanes: &[Lane<'_, S>],
        cut: usize,
    ) -> usize {
        self.walk(lanes, cut).0
    }

    /// After the lanes were rolled back to `cut` (which [`Self::check`] allowed): the sender's
    /// true final value goes to the last lane that wrote it, with the round's start as what it
    /// was before, and the sender leaves every other lane.
    pub(crate) fn settle<S: StateSource + ?Sized>(&self, lanes: &mut [Lane<'_, S>], cut: usize) {
        let (_, truth, writer) = self.walk(lanes, cut);
        for (l, lane) in lanes.iter_mut().enumerate() {
            let Some(db) = lane.db.as_mut() else { continue };
            if Some(l) == writer {
                let now = AccountInfo {
                    balance: truth.balance,
                    nonce: truth.nonce,
                    ..self.start.clone()
                };
                db.settle_account(&self.sender, now, &self.start);
            } else {
                db.accounts.remove(&self.sender);
            }
        }
    }
}
