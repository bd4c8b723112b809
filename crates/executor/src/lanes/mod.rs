//! The lanes engine: a block's transactions split into one lane per worker, each lane run on
//! plain revm over its own overlay, with no shared state while it runs; conflicts between
//! lanes found after the fact, exactly, and undone.
//!
//! Block-STM pays for every read and write (a multi-version lookup, a recorded read, a
//! published write, a validation) whether or not anything conflicts; on cheap transactions
//! that bookkeeping costs as much as the transaction. A lane pays what the sequential engine
//! pays plus a few stores per location (`log.rs`), and the lanes meet only at the end of each
//! *epoch* (a range of the block, growing from a sixty-fourth to an eighth of what is left).
//!
//! ## A round
//! 1. **Plan** (`partition.rs`): each transaction goes to the lane of its sender (nonces never
//!    cross lanes), or of a key the earlier rounds learned. When one sender has so much of the
//!    rest that this would leave one lane with nearly all of it, the round is *split* instead
//!    (`split.rs`): each lane runs a contiguous segment of the block, the later ones from an
//!    assumed value of that sender, checked after the round.
//! 2. **Epochs**: every lane runs its transactions of the epoch in block order, then at a
//!    barrier checks what it read in the epoch against what the other lanes wrote: a read by
//!    transaction `j` of a location another lane's transaction `i < j` wrote means `j` may have
//!    seen a stale value. The smallest such `j` (bounded below: the first read after `i`) is the
//!    round's **cut**; at the next barrier every lane stops if the cut falls in what ran.
//!    Beneficiary fees are deferred (a transaction that never loads the beneficiary records its
//!    fee), so a read of the beneficiary after any deferred fee is a conflict too; so are a wipe
//!    of storage another lane wrote, and an EIP-7610 storage probe of such an account.
//! 3. **Keep** everything below the cut: every transaction below it read only values that
//!    the transactions below it in block order wrote (no other lane wrote what it read before
//!    it), so its result is the sequential one. The block's gas is checked in block order
//!    (a transaction that does not fit cuts there too), outcomes get their cumulative gas.
//! 4. Unless the round ran the whole block, **roll back** each lane to the cut (`log.rs`'s undo
//!    log), lay the lanes' writes over the earlier rounds' state (disjoint below the cut), credit
//!    the fees below the cut in order, **learn** the keys of the conflicting pair, and run the
//!    rest as the next round.
//!
//! After [`MAX_ROUNDS`], or a round that kept nothing, the rest of the block runs on the
//! parallel engine (a long rest) or the sequential engine, over the state the rounds left; when
//! what the rounds learned gathers so much of the rest in one lane that the plan caps the
//! speedup below [`MIN_CHAIN_PARALLELISM`], on the sequential engine when the conflict was on a
//! slot (every transaction incrementing one counter), on the parallel engine when it was on an
//! account (payments to one address, which the parallel engine's commutative credits run side
//! by side).
//!
//! ## Finalisation
//! When a round runs to the end of the block, its lanes are finalised side by side. What a
//! lane holds of the accounts and storage the earlier rounds wrote, and the beneficiary, joins
//! those rounds' state (a lane's values of them are relative to it), the deferred fees are
//! credited there, and then each lane's changes (the rest of it: relative to the pre-state)
//! and that state's are computed against the pre-state in parallel, sorted, and merged (an
//! account two lanes wrote slots of gets both's slots). Before 2026-12-07 (hot spot 34) only a
//! block run whole in one round, with no lane touching the beneficiary, was finalised so;
//! every other block laid all its lanes over the earlier rounds' state and finalised that on
//! one thread: `hot-10` and `hot-30` (two rounds) ran 0.99x-1.16x of sequential, 1.28x-1.44x
//! since.

mod frozen;
mod log;
mod partition;
mod run;
mod split;
mod watch;

use crate::{
    block::Block,
    error::ExecutionError,
    evm::{blob_gas_of, cfg_env, BlockGas},
    outcome::{BlockOutput, EngineKind, ExecutionStats, LaneStats},
    parallel::{self, helpers::Lease},
    policy::MIN_CHAIN_PARALLELISM,
    sequential::{OverlayDb, OverlayParts, Prefix},
    ExecuteOptions,
};
use alloy_primitives::{Address, U256};
use frozen::Frozen;
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use log::{mark_of, may_have_written, roll_back, LaneDb, LaneLog, Mark, NONE};
use parking_lot::{Mutex, RwLock};
use partition::{Keys, Learned, Plan};
use revm::{context_interface::JournalTr, database_interface::DatabaseCommit, Journal};
use run::{Assign, Lane};
use split::Split;
use std::{
    ops::Range,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// Rounds before the rest of the block goes to another engine.
pub const MAX_ROUNDS: usize = 6;
/// The shortest epoch, in transactions of the block.
const MIN_EPOCH: usize = 32;
/// Segments of a split round per lane (worker) when the rest has [`MIN_SPLIT_SHARING`]
/// transactions or more: a worker that finishes early takes the next, so that one slow
/// transaction (a bot's call at the top of a pool's payout block) does not hold up half the
/// block. Shorter rests get one segment per lane: every boundary is a chance of a conflict.
const SEGMENTS_PER_LANE: usize = 2;
/// See [`SEGMENTS_PER_LANE`].
const MIN_SPLIT_SHARING: usize = 512;
/// Writes of accounts and slots a transaction makes, about (a payment: sender, recipient).
const WRITES_PER_TX: usize = 2;
/// A rest at least this long goes to the parallel engine after the last round.
const MIN_PARALLEL_TAIL: usize = 64;

/// Executes `block` on `source` with the lanes engine, `threads` lanes (the calling thread
/// runs one).
pub fn execute_lanes<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
) -> Result<BlockOutput, ExecutionError> {
    execute_lanes_with(block, source, threads, ExecuteOptions::default())
}

/// [`execute_lanes`] with options: [`ExecuteOptions::sequential_prefix`] runs the block's
/// first transactions on the sequential engine before the rounds, as the adaptive policy's
/// probe does; the rest is what the tail engine uses.
pub fn execute_lanes_with<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    let prefix = match options.sequential_prefix {
        Some(len) => Some(Prefix::run(block, source, len.get(), None)?),
        None => None,
    };
    execute_lanes_after(block, source, threads, options, prefix)
}

/// [`execute_lanes_with`] for the rest of a block whose first transactions `prefix` ran (the
/// adaptive policy's probe): the rounds start after them, over their state.
pub(crate) fn execute_lanes_after<'a, S: StateSource + ?Sized>(
    block: &'a Block,
    source: &'a S,
    threads: usize,
    options: ExecuteOptions,
    prefix: Option<Prefix<'a, S>>,
) -> Result<BlockOutput, ExecutionError> {
    let n = block.transactions.len();
    let lanes = threads.clamp(1, n.max(1));
    let mut stats = ExecutionStats::new(EngineKind::Lanes { lanes });
    let mut lane_stats = LaneStats::default();
    let cfg = cfg_env(&block.context);
    let (expected_accounts, expected_slots) = block.expected_writes();
    let (mut base, mut results, mut gas) = match prefix {
        Some(prefix) => {
            stats.executions = prefix.executions;
            (prefix.db, prefix.results, prefix.gas)
        }
        None => (
            OverlayDb::new(source, &block.context.block_hashes, 0),
            Vec::with_capacity(n),
            BlockGas::default(),
        ),
    };
    let mut learned = Learned::default();
    let lease = if lanes > 1 { Lease::take(lanes - 1) } else { None };
    // Whether every transaction's gas (and blob gas) fits in the block together: then the
    // block's gas check, made in block order after a round, cannot cut it, and the lanes need
    // not keep the undo logs of the epochs that passed their checks.
    let blob_gas: u64 = block.transactions.iter().map(blob_gas_of).sum();
    let gas_fits = block.gas_limit_sum() <= block.context.header.gas_limit
        && block.context.blob.max_blob_gas_per_block.is_none_or(|max| blob_gas <= max);
    let mut start = results.len();
    // Whether the rest goes to the sequential engine: what the rounds learned leaves too little
    // to run side by side, and the last conflict was on a slot (a counter every transaction
    // increments). Payments to one account chain lanes too, but the parallel engine runs them
    // side by side (commutative credits).
    let mut chained = false;
    let mut learned_account = false;
    // Whether the last round split one sender's transactions: a rest left after it is that
    // sender's chain.
    let mut last_split = false;
    while start < n && lane_stats.rounds < MAX_ROUNDS {
        // One sender's transactions, most of the rest, split into segments; else by sender.
        let split = if lanes > 1 {
            let per_lane = if n - start >= MIN_SPLIT_SHARING { SEGMENTS_PER_LANE } else { 1 };
            Split::plan(block, start, per_lane * lanes, &base, source)
        } else {
            None
        };
        let plan = match split {
            Some(_) => None,
            None => Some(Plan::new(block, start, lanes, &learned)),
        };
        let assign = match (&split, &plan) {
            (Some(split), _) => Assign::Split(split),
            (None, Some(plan)) if plan.speedup_cap >= MIN_CHAIN_PARALLELISM => {
                Assign::Plan(plan, &learned)
            }
            _ => {
                chained = !learned_account;
                break;
            }
        };
        lane_stats.rounds += 1;
        lane_stats.split_rounds += usize::from(split.is_some());
        last_split = split.is_some();
        let frozen: Vec<Frozen<'_, '_, S>> = (0..split.as_ref().map_or(lanes, Split::lanes))
            .map(|lane| Frozen {
                base: &base,
                source,
                sender: split.as_ref().and_then(|split| {
                    split.assumed_account(lane).map(|assumed| (split.sender, assumed))
                }),
            })
            .collect();
        // Each lane's share of the block's writes, for sizing its tables.
        let share = frozen.len();
        let round = Round {
            block,
            assign,
            cfg: &cfg,
            lanes: frozen
                .iter()
                .enumerate()
                .map(|(lane, frozen)| {
                    let mut log = LaneLog::new(expected_accounts / share, expected_slots / share);
                    log.keep_undo = !gas_fits;
                    if let Some(split) = &split {
                        // The first lane of a split round is the block in order from the
                        // round's state: it pays the beneficiary, which may be the split
                        // sender, and keeps no undo log unless the block's gas check can cut
                        // it (any other cut inside it keeps nothing of the round: `drop_first`
                        // below). A later lane may be cut anywhere in its segment: one epoch.
                        log.defer_fees = lane > 0;
                        log.record_undo = lane > 0 || !gas_fits;
                        log.reserve_undo(WRITES_PER_TX * split.segment(lane).len());
                    }
                    let db = LaneDb::tracked(
                        frozen,
                        &block.context.block_hashes,
                        expected_accounts / share,
                        log,
                    );
                    let expected = match &split {
                        Some(split) => split.segment(lane).len(),
                        None => (n - start) / lanes,
                    };
                    RwLock::new(Lane::new(db, expected))
                })
                .collect(),
            // A split round's lanes run different ranges of the block: one epoch, checked once.
            epochs: if split.is_some() {
                std::iter::once(start..n).collect()
            } else {
                epochs(start, n)
            },
            cut: AtomicUsize::new(n),
            conflict: Mutex::new(None),
            credited: Mutex::new(Vec::new()),
            next_lane: AtomicUsize::new(0),
            next_check: AtomicUsize::new(0),
            barrier: SpinBarrier::new(lanes),
        };
        let started = Instant::now();
        let work = || round.work();
        match &lease {
            Some(lease) => {
                lease.run(work, work);
            }
            None if lanes == 1 => work(),
            None => std::thread::scope(|scope| {
                for _ in 1..lanes {
                    scope.spawn(work);
                }
                work();
            }),
        }
        stats.execute_time += started.elapsed();
        let Round { lanes: lane_cells, cut, conflict, credited, .. } = round;
        let credited = credited.into_inner();
        let mut lanes_run: Vec<Lane<'_, _>> =
            lane_cells.into_iter().map(RwLock::into_inner).collect();
        let conflict = conflict.into_inner();
        let mut cut = cut.into_inner();
        // Whether the first lane of a split round must go: it kept no undo log (only the
        // block's gas check could cut it), and a cut inside it (a wipe or probe of storage
        // another lane wrote) keeps nothing of the round.
        let mut drop_first = false;
        if let Some(split) = &split {
            cut = split.check(&lanes_run, cut);
            let first = &lanes_run[0];
            if gas_fits
                && cut < split.segment(0).end
                && first.stopped.as_ref().is_none_or(|(at, _)| *at != cut)
            {
                cut = start;
                drop_first = true;
            }
        }
        let executed: usize = lanes_run.iter().map(|lane| lane.results.len()).sum();
        stats.executions += executed;
        // Keep what is below the cut, in block order, checking the block's gas.
        let mut merged =
            KMerge::new(lanes_run.iter_mut().map(|lane| std::mem::take(&mut lane.results)));
        for index in start..cut {
            let tx = &block.transactions[index];
            let result = match merged.next() {
                Some((at, result)) if at as usize == index => result,
                _ => {
                    cut = index;
                    break;
                }
            };
            if gas.check(&block.context, tx).is_err() {
                cut = index;
                break;
            }
            results.push(result.map(|mut outcome| {
                gas.count(&mut outcome);
                outcome
            }));
        }
        drop(merged);
        lane_stats.discarded += executed - (cut - start);
        // Each lane's fees are in block order: merged, not sorted (a sort of a gigagas
        // transfer block's 47,619 fees took 2.6 ms on one core).
        let fee_runs: Vec<Vec<(u32, U256)>> =
            lanes_run.iter_mut().map(|lane| std::mem::take(&mut lane.fees)).collect();
        let fees = KMerge::new(fee_runs.into_iter())
            .take_while(|(index, _)| (*index as usize) < cut)
            .map(|(_, fee)| fee);
        if let Some(split) = &split {
            if drop_first {
                lanes_run[0].db = None;
            }
            // The sender's true value, now that the cut is final, into one lane.
            for db in lanes_run.iter_mut().filter_map(|lane| lane.db.as_mut()) {
                roll_back(db, cut);
            }
            split.settle(&mut lanes_run, cut);
            split.settle_credits(&mut lanes_run, cut, credited)?;
        }
        if cut == n {
            // The round ran to the end of the block: finalise lane by lane.
            let finalize = Instant::now();
            let beneficiary = block.context.header.beneficiary;
            let mut rest = Vec::with_capacity(lanes);
            let mut moved = Vec::with_capacity(lanes);
            for lane in lanes_run {
                let Some(db) = lane.db else { continue };
                let mut parts = db.into_parts();
                // A lane's values of what the earlier rounds wrote are relative to their state,
                // and the beneficiary's fees are credited there: those join that state.
                moved.push(base.claim(&mut parts, &beneficiary)?);
                rest.push(parts);
            }
            base.reserve(moved.iter().map(OverlayParts::written).sum());
            for part in moved {
                base.absorb(part, |mark: &Mark| mark.last_write != NONE);
            }
            credit_fees(&mut base, block, fees)?;
            let changes = finalize_lanes(rest, base, lease.as_ref(), block, source)?;
            stats.finalize_time = finalize.elapsed();
            stats.lanes = Some(lane_stats);
            stats.reexecutions = lane_stats.discarded;
            return Ok(gas.output(results, changes, stats));
        }
        let parts: Vec<_> = lanes_run
            .into_iter()
            .filter_map(|lane| lane.db)
            .map(|mut db| {
                roll_back(&mut db, cut);
                db.into_parts()
            })
            .collect();
        // Sized once for everything the lanes wrote: growing by doubling would hold the old
        // and the new table at once.
        base.reserve(parts.iter().map(|part| part.written()).sum());
        for part in parts {
            base.absorb(part, |mark: &Mark| mark.last_write != NONE);
        }
        credit_fees(&mut base, block, fees)?;
        if let Some(conflict) = conflict.filter(|conflict| conflict.cut == cut) {
            let keys = |index: usize| Keys::of(&block.transactions[index]);
            learned.conflict(&keys(conflict.writer), &keys(conflict.reader));
            learned_account = conflict.account;
        }
        let progressed = cut > start;
        start = cut;
        if !progressed {
            break;
        }
    }
    stats.reexecutions = lane_stats.discarded;
    if start < n {
        // The rest goes to another engine, over the state the rounds left.
        lane_stats.tail = n - start;
        let executions = stats.executions;
        let prefix = Prefix { db: base, results, gas, executions: 0, time: Duration::ZERO };
        chained |= last_split;
        let mut output = if lanes > 1 && !chained && n - start >= MIN_PARALLEL_TAIL {
            lane_stats.tail_parallel = true;
            parallel::execute_parallel_predicted(
                block,
                source,
                lanes,
                options,
                None,
                Some(prefix),
                lease,
            )?
        } else {
            drop(lease);
            prefix.finish(block)?
        };
        output.stats.engine = EngineKind::Lanes { lanes };
        output.stats.executions += executions;
        output.stats.reexecutions += stats.reexecutions;
        output.stats.execute_time += stats.execute_time;
        output.stats.lanes = Some(lane_stats);
        return Ok(output);
    }
    let finalize = Instant::now();
    let changes = base.into_changes()?;
    stats.finalize_time = finalize.elapsed();
    stats.lanes = Some(lane_stats);
    Ok(gas.output(results, changes, stats))
}

/// The epochs of a round over `start..n`: from a sixty-fourth of the transactions (at least
/// [`MIN_EPOCH`]), doubling, to an eighth.
fn epochs(start: usize, n: usize) -> Vec<Range<usize>> {
    let left = n - start;
    let most = (left / 8).max(MIN_EPOCH);
    let mut length = (left / 64).max(MIN_EPOCH).min(most);
    let mut epochs = Vec::new();
    let mut at = start;
    while at < n {
        let end = (at + length).min(n);
        epochs.push(at..end);
        at = end;
        length = (2 * length).min(most);
    }
    epochs
}

/// The first conflict a round found: the cut, and a pair of transactions that conflicted
/// (`writer` in one lane wrote what `reader` in another read after it), to learn from.
#[derive(Clone, Copy, Debug)]
struct Conflict {
    cut: usize,
    writer: usize,
    reader: usize,
    /// Whether the location is an account (else a slot, a wipe or the like).
    account: bool,
}

/// One round of lanes, shared by its workers.
struct Round<'a, S: ?Sized> {
    block: &'a Block,
    assign: Assign<'a>,
    cfg: &'a revm::context::CfgEnv,
    lanes: Vec<RwLock<Lane<'a, S>>>,
    epochs: Vec<Range<usize>>,
    /// The smallest cut found so far (the block's length while none).
    cut: AtomicUsize,
    conflict: Mutex<Option<Conflict>>,
    /// Accounts a later lane of a split round only paid, which an earlier lane changed too:
    /// their credits add up (`split.rs`).
    credited: Mutex<Vec<Address>>,
    next_lane: AtomicUsize,
    /// The next segment of a split round to check.
    next_check: AtomicUsize,
    barrier: SpinBarrier,
}

impl<S: StateSource + ?Sized> Round<'_, S> {
    /// One worker's part: one lane, epoch after epoch, checking after each.
    fn work(&self) {
        if let Assign::Split(_) = self.assign {
            return self.work_split();
        }
        let me = self.next_lane.fetch_add(1, Ordering::Relaxed);
        for range in &self.epochs {
            if self.cut.load(Ordering::Acquire) <= range.start {
                break;
            }
            if let Some(lane) = self.lanes.get(me) {
                lane.write().run_epoch(self.block, self.cfg, self.assign, me, range.clone());
            }
            self.barrier.wait();
            self.found(self.check(me, range.start));
            self.barrier.wait();
        }
    }

    /// One worker's part of a split round: segments (more than workers, so that one slow
    /// transaction does not hold up a worker's whole share), each taken when the worker is
    /// free, then the segments' checks likewise.
    fn work_split(&self) {
        let Some(range) = self.epochs.first() else { return };
        loop {
            let segment = self.next_lane.fetch_add(1, Ordering::Relaxed);
            let Some(lane) = self.lanes.get(segment) else { break };
            lane.write().run_epoch(self.block, self.cfg, self.assign, segment, range.clone());
        }
        self.barrier.wait();
        loop {
            let segment = self.next_check.fetch_add(1, Ordering::Relaxed);
            if segment >= self.lanes.len() {
                break;
            }
            self.found(self.check(segment, range.start));
        }
        self.barrier.wait();
    }

    /// Records `conflict`, if the round's cut is not already earlier.
    fn found(&self, conflict: Option<Conflict>) {
        let Some(conflict) = conflict else { return };
        self.cut.fetch_min(conflict.cut, Ordering::AcqRel);
        let mut found = self.conflict.lock();
        if found.is_none_or(|found| conflict.cut < found.cut) {
            *found = Some(conflict);
        }
    }

    /// Checks what lane `me` read in the epoch that just ran (from `epoch_start` on) against
    /// what the other lanes wrote; returns the earliest conflict. Its stale read is in this
    /// epoch (one in an earlier epoch would have been found there), so the cut is never
    /// before `epoch_start`.
    fn check(&self, me: usize, epoch_start: usize) -> Option<Conflict> {
        let lane = self.lanes.get(me)?.read();
        let mut earliest: Option<Conflict> = lane.stopped.as_ref().map(|(index, _)| Conflict {
            cut: *index,
            writer: *index,
            reader: *index,
            account: false,
        });
        let mut found = |mut conflict: Conflict| {
            conflict.cut = conflict.cut.max(epoch_start);
            if earliest.is_none_or(|earliest| conflict.cut < earliest.cut) {
                earliest = Some(conflict);
            }
        };
        let mine = lane.db.as_ref()?;
        let guards = others_lanes(&self.lanes, me);
        let others: Vec<&LaneDb<'_, _>> =
            guards.iter().filter_map(|lane| lane.db.as_ref()).collect();
        // A split round's sender is checked after the round, lane by lane (`split.rs`).
        let assumed = match self.assign {
            Assign::Split(split) if me > 0 => Some(split.sender),
            _ => None,
        };
        for address in &mine.track.touched {
            if Some(*address) == assumed {
                continue;
            }
            let location = log::Location::Account(*address);
            for other in &others {
                if !may_have_written(other, &location) {
                    continue;
                }
                let Some(theirs) = mark_of(other, &location).filter(|m| m.first_write != NONE)
                else {
                    continue;
                };
                let Some(ours) = mark_of(mine, &location) else { continue };
                if theirs.first_write < ours.last_read {
                    if let Assign::Split(split) = self.assign {
                        let earlier: Vec<&LaneDb<'_, _>> =
                            guards[..me].iter().filter_map(|lane| lane.db.as_ref()).collect();
                        if split.credit_only(self.block, me, address, mine, &earlier) {
                            self.credited.lock().push(*address);
                            continue;
                        }
                    }
                    found(Conflict {
                        cut: (theirs.first_write as usize + 1).max(ours.first_read as usize),
                        writer: theirs.first_write as usize,
                        reader: ours.last_read as usize,
                        account: true,
                    });
                }
            }
        }
        for (address, slot, reader) in &mine.track.slot_reads {
            let location = log::Location::Slot(*address, *slot);
            for other in &others {
                if !may_have_written(other, &location) {
                    continue;
                }
                if let Some(theirs) = mark_of(other, &location).filter(|m| m.first_write < *reader)
                {
                    found(Conflict {
                        cut: *reader as usize,
                        writer: theirs.first_write as usize,
                        reader: *reader as usize,
                        account: false,
                    });
                }
            }
        }
        // A wipe of storage another lane wrote, or a probe of such storage (or, over an earlier
        // round's state, of storage this lane held when it probed): cut at it.
        for (address, at) in &mine.track.wipes {
            if others.iter().any(|other| other.storage.contains_key(address)) {
                found(Conflict {
                    cut: *at as usize,
                    writer: *at as usize,
                    reader: *at as usize,
                    account: false,
                });
            }
        }
        for (address, at, held) in &mine.track.probes {
            if *held || others.iter().any(|other| other.storage.contains_key(address)) {
                found(Conflict {
                    cut: *at as usize,
                    writer: *at as usize,
                    reader: *at as usize,
                    account: false,
                });
            }
        }
        // A read of the beneficiary after a deferred fee (of any lane, this one's too).
        let beneficiary = self.block.context.header.beneficiary;
        let first_fee = std::iter::once(&*lane)
            .chain(guards.iter().map(|l| &**l))
            .filter_map(|lane| lane.fees.first().map(|(index, _)| *index))
            .min();
        let read = match self.assign {
            // A split sender that is the beneficiary: its payments that run no code take what
            // they take from any balance (`split.rs`); the other reads see the fees.
            Assign::Split(split) if split.sender == beneficiary => first_fee
                .and_then(|fee| Split::strict_read_after(&lane.sender, fee))
                .map(|at| (at, at)),
            _ => mine.accounts.get(&beneficiary).map(|l| (l.mark.first_read, l.mark.last_read)),
        };
        if let (Some(fee), Some((first_read, last_read))) = (first_fee, read) {
            if fee < last_read {
                found(Conflict {
                    cut: (fee as usize + 1).max(first_read as usize),
                    writer: fee as usize,
                    reader: last_read as usize,
                    account: true,
                });
            }
        }
        earliest
    }
}

/// Read guards of every lane but `me`.
fn others_lanes<'l, 'r, S: ?Sized>(
    lanes: &'l [RwLock<Lane<'r, S>>],
    me: usize,
) -> Vec<parking_lot::RwLockReadGuard<'l, Lane<'r, S>>> {
    (0..lanes.len()).filter(|l| *l != me).map(|l| lanes[l].read()).collect()
}

/// Merges runs of `(index, item)` sorted by index.
struct KMerge<T> {
    /// The runs' heads are looked at in place, not moved out to be peeked at.
    runs: Vec<std::vec::IntoIter<(u32, T)>>,
}

impl<T> KMerge<T> {
    fn new(runs: impl Iterator<Item = Vec<(u32, T)>>) -> Self {
        Self { runs: runs.map(Vec::into_iter).collect() }
    }
}

impl<T> Iterator for KMerge<T> {
    type Item = (u32, T);

    fn next(&mut self) -> Option<(u32, T)> {
        let run = (0..self.runs.len())
            .filter_map(|i| self.runs[i].as_slice().first().map(|(index, _)| (*index, i)))
            .min()?
            .1;
        self.runs[run].next()
    }
}

/// A barrier for the round's workers, one per core: they spin (yielding after a while)
/// rather than sleep, since an epoch's wait is short.
#[derive(Debug)]
struct SpinBarrier {
    count: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(count: usize) -> Self {
        Self { count, arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0) }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.count {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Credits the beneficiary of `block` with `fees` in order, on `db`, with revm's own journal
/// (its touch rules: EIP-161 and the older ones): one credit at a time while the account is
/// absent or empty, the sum of the rest at once (`incr_balance` skips a credit that would
/// overflow the balance, so the sum is folded the same way).
fn credit_fees<S: StateSource + ?Sized>(
    db: &mut OverlayDb<'_, S>,
    block: &Block,
    fees: impl IntoIterator<Item = U256>,
) -> Result<(), ExecutionError> {
    let beneficiary = block.context.header.beneficiary;
    let mut fees = fees.into_iter().peekable();
    // A second zero credit in a row changes nothing: the first left the account absent (or,
    // before Spurious Dragon, existing and empty), and touching it again leaves it so.
    let mut last_zero = false;
    while fees.peek().is_some() {
        if last_zero && fees.peek().is_some_and(|fee| fee.is_zero()) {
            fees.next();
            continue;
        }
        let now = match db.loaded(&beneficiary) {
            Some(now) => now.clone(),
            None => db
                .source()
                .account(beneficiary)
                .map_err(|source| ExecutionError::StateAfterBlock { source })?,
        };
        let credit = match now.filter(|info| !info.is_empty()) {
            Some(info) => {
                let balance = fees
                    .by_ref()
                    .fold(info.balance, |balance, fee| balance.checked_add(fee).unwrap_or(balance));
                balance - info.balance
            }
            None => fees.next().unwrap_or_default(),
        };
        let mut journal: Journal<&mut OverlayDb<'_, S>> = Journal::new(&mut *db);
        journal.set_spec_id(block.context.spec);
        journal
            .balance_incr(beneficiary, credit)
            .map_err(|_| ExecutionError::Invariant("the beneficiary could not be loaded"))?;
        let state = journal.finalize();
        drop(journal);
        db.commit(state);
        last_zero = credit.is_zero();
    }
    Ok(())
}

/// The block's changes after a round that ran to the end of the block: each lane's (what is
/// left of it once what the earlier rounds' state holds has joined `base`: the rest is relative
/// to the pre-state) and `base`'s against the pre-state, in parallel, then merged.
fn finalize_lanes<'a, S: StateSource + ?Sized>(
    lanes: Vec<OverlayParts<Mark>>,
    base: OverlayDb<'a, S>,
    lease: Option<&Lease>,
    block: &'a Block,
    source: &'a S,
) -> Result<StateChanges, ExecutionError> {
    let hashes = &block.context.block_hashes;
    let mut jobs: Vec<Finalized<'a, S>> = Vec::with_capacity(lanes.len() + 1);
    jobs.push(Finalized::Base(base));
    jobs.extend(lanes.into_iter().map(|parts| {
        Finalized::Lane(Box::new(LaneDb::from_parts(source, hashes, parts, LaneLog::new(0, 0))))
    }));
    // The largest first, so that the last job to start is a short one.
    jobs.sort_by_key(|job| std::cmp::Reverse(job.len()));
    let jobs: Vec<Mutex<Option<_>>> = jobs.into_iter().map(|job| Mutex::new(Some(job))).collect();
    let runs = Mutex::new(Vec::with_capacity(jobs.len()));
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let run = match job.lock().take() {
                Some(Finalized::Base(db)) => db.into_sorted_changes(),
                Some(Finalized::Lane(db)) => db.into_sorted_changes(),
                None => continue,
            };
            runs.lock().push(run);
        }
    };
    match lease {
        Some(lease) => {
            lease.run(work, work);
        }
        None => work(),
    }
    let runs = runs.into_inner().into_iter().collect::<Result<Vec<_>, _>>()?;
    merge_runs(runs, source)
}

/// One overlay to finalise: the earlier rounds' state, or a lane's.
enum Finalized<'a, S: ?Sized> {
    Base(OverlayDb<'a, S>),
    Lane(Box<LaneDb<'a, S>>),
}

impl<S: ?Sized> Finalized<'_, S> {
    /// Accounts it holds.
    fn len(&self) -> usize {
        match self {
            Self::Base(db) => db.accounts.len(),
            Self::Lane(db) => db.accounts.len(),
        }
    }
}

/// Merges runs of changes, each sorted by address, from lanes that conflicted nowhere: an
/// account's value changed in at most one of them (the others that list it wrote some of its
/// slots, and list its value as before the block), and no slot is in two.
fn merge_runs<S: StateSource + ?Sized>(
    runs: Vec<Vec<(Address, AccountChange)>>,
    source: &S,
) -> Result<StateChanges, ExecutionError> {
    let total: usize = runs.iter().map(Vec::len).sum();
    let mut merged: Vec<(Address, AccountChange)> = Vec::with_capacity(total);
    // Each run's head is looked at in place (`as_slice`), not moved out to be peeked at.
    let mut runs: Vec<_> = runs.into_iter().map(Vec::into_iter).collect();
    loop {
        let mut next: Option<(usize, Address)> = None;
        for (i, run) in runs.iter().enumerate() {
            if let Some((address, _)) = run.as_slice().first() {
                if next.is_none_or(|(_, least)| *address < least) {
                    next = Some((i, *address));
                }
            }
        }
        let Some((i, _)) = next else { break };
        let Some((address, change)) = runs[i].next() else { break };
        match merged.last_mut() {
            Some((last, existing)) if *last == address => {
                if existing.info != change.info {
                    let before = source
                        .account(address)
                        .map_err(|source| ExecutionError::StateAfterBlock { source })?
                        .as_ref()
                        .map(AccountState::from);
                    if existing.info == before {
                        existing.info = change.info;
                    }
                }
                existing.code = existing.code.take().or(change.code);
                existing.storage_cleared |= change.storage_cleared;
                // Both sorted, and disjoint: merged in one pass.
                let mut slots = change.storage;
                existing.storage.append(&mut slots);
            }
            _ => merged.push((address, change)),
        }
    }
    drop(runs);
    Ok(StateChanges::from_sorted(merged))
}
