//! Who executes what, and the in-order commit that makes the result exact.
//!
//! # The transaction lifecycle
//!
//! ```text
//!            next_exec.fetch_add          publish writes,              commit_ready:
//!  PENDING ───────────────────> (running) ───────────────> EXECUTED ──────────────────> COMMITTED
//!     │                           by any worker    ▲          │  validate reads; if stale,
//!     │ the transaction it follows                 │ claimed  │  re-execute right there
//!     │ has not executed yet                       │          └─ (reads below are final)
//!     └────────────────────────────> DEFERRED ─────┘
//!                                                   by whoever executes the one it follows,
//!                                                   or by the committer when it gets there
//! ```
//!
//! - Every worker takes the next never-executed transaction from one atomic counter
//!   (`next_exec`), executes it against the multi-version memory and publishes its writes.
//!   Executions are *optimistic*: what they read from uncommitted transactions may change.
//! - A transaction predicted to follow an earlier one ([`super::predict`]: same sender, same
//!   ERC-20 holder, ..., or the previous call of the same contract and selector once such calls
//!   kept failing validation on each other: `learn`) that has not finished executing is set
//!   aside (`DEFERRED`) instead of
//!   executed on values about to change. Whoever finishes the transaction it follows claims it
//!   and executes it next, so a chain runs on one worker while the others go on; the committer
//!   claims and runs it itself if it gets there first.
//! - A transaction predicted to be heavy ([`Predictions::heavy`]: allowed a tenth of the
//!   block's gas) is handed out before all others, from its own small list (`take_hoisted`),
//!   so that one late in the block does not keep a worker busy after the rest have run out of
//!   work. The counter skips it, and an in-order window stops before it.
//! - One worker at a time (whoever wins `try_lock` on the commit state) advances the commit
//!   frontier in block order. At transaction `j` every transaction below `j` is committed, so
//!   the values `j` should have read are final. The committer validates `j`'s read set against
//!   them; if a value differs it re-executes `j` on the spot, and that incarnation is final by
//!   construction. Then it applies the block-level rules in order (gas and blob gas left in the
//!   block; an invalid transaction's writes are retracted) and records the outcome. The fee
//!   a transaction owes the beneficiary (when it never loaded the beneficiary) is added up by
//!   the committer and credited as one version per run of commits (`flush_fees`), before
//!   anything reads the beneficiary at the frontier: every transaction adds to the
//!   beneficiary, and publishing it from the executing workers moved that account's versions
//!   between cores on every transaction.
//!
//! - While validation failures are frequent (the throttle, [`ConflictRate`]), nobody speculates:
//!   the committer runs windows of transactions in order on the sequential engine
//!   ([`super::in_order`]) and publishes each window's net writes.
//!
//! # Invariants
//! - A transaction is executed speculatively at most once; any further incarnation runs inside
//!   the commit, holding the commit lock. So at most `2n` executions, and no cascade.
//! - A hoisted transaction is executed speculatively by exactly one worker, the one
//!   `take_hoisted` hands it to: every worker looks there before it takes from the counter
//!   or snoozes under the throttle, so each is handed out; neither the counter nor a window nor
//!   the committer's inline path takes one (a hoisted transaction is never `DEFERRED`).
//! - A `DEFERRED` transaction is executed by exactly one worker: the one whose compare-and-swap
//!   takes it back to `PENDING`. Setting aside and finishing use sequentially consistent
//!   operations on both statuses (store mine, then load the other's), so of the worker that
//!   defers `j` and the worker that finishes the transaction `j` follows, at least one sees
//!   the other's store and claims `j`: a deferred transaction never waits for the committer
//!   when the transaction it follows has executed.
//! - `status[j] == EXECUTED` is stored (release) only after `j`'s writes and read set are
//!   published; the committer loads it (acquire) before reading them.
//! - Only the commit-lock holder touches a transaction at or above `EXECUTED`.
//! - Validation of `j` reads only versions below `j`, all committed: it is exact, and a
//!   validated incarnation's result equals what sequential execution would produce.
//! - An incarnation of `j` that started when the frontier had reached `j` read only committed
//!   values: it is final without validation (`reads_final`; every transaction, on one worker),
//!   unless it loaded the beneficiary while fees were pending (`Scheduler::fees_pending`): it
//!   is then validated after they are credited, and its reads are kept for that.
//! - Fees pending with the committer are all of transactions below the frontier, and are
//!   credited before the committer validates or runs a transaction that may read the
//!   beneficiary, before an in-order window and at the end: no final value misses one.
//!
//! # Why it cannot deadlock or hang
//! No worker ever waits for a lock while holding another: the commit lock is only `try_lock`ed,
//! the per-transaction and per-shard locks are held for bounded, non-blocking work. Each
//! transaction is handed out once by the counter and executions are bounded by gas, so the
//! commit frontier advances whenever the transaction at it has finished executing; idle workers
//! retry the commit until the frontier reaches the end or a fatal error stops everyone.

use super::{
    in_order,
    mv_memory::{Location, TxIdx, WriteSet},
    predict::Predictions,
    tx_db::{base_account, dependencies, validate, Read},
    vm::{execute_tx, Execution, ParEvm, TxFailure},
    Shared,
};
use crate::{
    error::ExecutionError,
    evm::{BlockGas, DbError},
    outcome::TxResult,
};
use alloy_primitives::{Address, U256};
use crossbeam_utils::CachePadded;
use lanes_state::StateSource;
use parking_lot::Mutex;
use std::{
    sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// The block-stopping error for a database failure while handling transaction `tx`.
fn db_error(tx: TxIdx, error: DbError) -> ExecutionError {
    match error {
        DbError::Source(source) => ExecutionError::State { tx, source },
        DbError::MissingBlockHash(number) => ExecutionError::MissingBlockHash { tx, number },
    }
}

/// Buffers (reads, written locations, credited accounts, outcome boxes) a worker keeps from
/// the transactions it committed, for its next executions.
const SPARES: usize = 32;

/// Empties `buffer` into `spares` (unless it never allocated or `spares` is full), for a later
/// execution on this worker to fill instead of growing a new one.
fn give_back<T>(spares: &mut Vec<Vec<T>>, mut buffer: Vec<T>) {
    if buffer.capacity() > 0 && spares.len() < SPARES {
        buffer.clear();
        spares.push(buffer);
    }
}

const PENDING: u8 = 0;
const DEFERRED: u8 = 1;
const EXECUTED: u8 = 2;
const COMMITTED: u8 = 3;

/// What an incarnation produced, kept from its execution until its commit.
#[derive(Debug)]
pub(crate) struct Outcome {
    execution: Execution,
    /// The fee the incarnation owes the beneficiary, when it never loaded the beneficiary:
    /// credited when the transaction commits (see `MvMemory::credit_on_commit`).
    fee: Option<U256>,
}

impl Outcome {
    /// What a box holds once its outcome was committed (and the box kept for reuse).
    const SPENT: Self = Self {
        execution: Err(TxFailure::Fatal(ExecutionError::Invariant("outcome already committed"))),
        fee: None,
    };
}

/// The latest incarnation of one transaction.
#[derive(Debug, Default)]
struct TxData {
    /// Boxed: an outcome is 168 bytes and a slot exists for every transaction from the start,
    /// while outcomes live only between execution and commit (a gigagas block of cheap calls
    /// has 25,000-36,000 slots).
    outcome: Option<Box<Outcome>>,
    reads: Vec<Read>,
    written: Vec<Location>,
    /// The accounts this incarnation credited that may need a checkpoint (see
    /// [`MvMemory::commit`]).
    ///
    /// [`MvMemory::commit`]: super::mv_memory::MvMemory::commit
    credited: Vec<Address>,
    /// Every transaction below was committed when this incarnation started, so everything it
    /// read was final: validation has nothing to check (always so on one worker). Not so for
    /// an incarnation that loaded the beneficiary while the committer held fees not credited
    /// yet (`CommitState::fees`): it is validated after they are.
    reads_final: bool,
    /// The transaction was set aside until the one it follows had executed.
    waited: bool,
}

#[derive(Debug)]
struct TxSlot {
    status: AtomicU8,
    data: Mutex<TxData>,
}

/// State owned by the commit-lock holder.
#[derive(Debug)]
struct CommitState {
    next: TxIdx,
    gas: BlockGas,
    results: Vec<TxResult>,
    /// Per committed transaction, what it depended on (only when tracing).
    dependencies: Vec<Vec<TxIdx>>,
    /// Recent validation failures, driving the throttle.
    conflicts: ConflictRate,
    /// Per call group: validation failures and commits through the speculative path, for
    /// [`Scheduler::learn`] (empty until a failure).
    call_failures: Vec<(u32, u32)>,
    /// The fees committed transactions owe the beneficiary and that are not credited yet: the
    /// last such transaction and the sum (see [`Scheduler::flush_fees`]).
    fees: Option<(TxIdx, U256)>,
}

/// An exponential moving average of validation failures at the commit frontier, and the
/// throttle it drives. Above [`ConflictRate::THROTTLE_ABOVE`] (or when most commits waited for
/// the transaction they follow, [`ConflictRate::CHAINED_ABOVE`]) speculation stops: workers
/// would mostly compute results that fail validation, or wait for each other (every
/// transaction touching one hot slot, say), so the committer runs a *window* of the next
/// transactions in order on the sequential engine ([`super::in_order`]). Then speculation resumes and the rate is measured again. A window
/// that starts within [`ConflictRate::REENGAGED_WITHIN`] commits of the previous one's end is
/// twice as long, up to [`ConflictRate::MAX_WINDOW`]: conflicts that persist end up running
/// nearly all in order, a burst of them costs one short window.
#[derive(Debug, Default)]
struct ConflictRate {
    average: f32,
    /// A slower moving average of commits that waited for the transaction they follow (a
    /// predicted follower, or the next call of a hot group).
    chained: f32,
    /// Transactions left in the current window; the throttle is on while non-zero.
    throttled_left: usize,
    /// The length of the last window (0: none yet).
    window: usize,
    /// Commits recorded since the last window ended.
    since_window: usize,
    /// A window of this length after every this many commits, whatever the conflicts
    /// ([`crate::ExecuteOptions::in_order_every`]).
    forced_every: Option<usize>,
    /// The length of a window that does not follow closely on the previous one: shorter in
    /// small blocks (see [`ConflictRate::new`]).
    first_window: usize,
}

impl ConflictRate {
    const THROTTLE_ABOVE: f32 = 0.5;
    /// The share of chained commits (a slower average: a block where a third of the
    /// transactions are chained still runs the rest side by side) above which the throttle
    /// comes on.
    const CHAINED_ABOVE: f32 = 0.75;
    /// The first window of a large block.
    const FIRST_WINDOW: usize = 128;
    /// A small block's first window is this share of its transactions (at least
    /// [`Self::MIN_FIRST_WINDOW`]): a burst of failures at one hot contract in a block of 200
    /// transactions otherwise sent the whole rest of the block in order (mainnet block
    /// 10760440: ideal 2.00x, 24-41% of it in order after the 128-transaction window).
    const FIRST_WINDOW_SHARE: usize = 16;
    const MIN_FIRST_WINDOW: usize = 8;
    const MAX_WINDOW: usize = 4096;
    const REENGAGED_WITHIN: usize = 32;

    /// The conflict rate of a block of `transactions`, nothing recorded yet.
    fn new(transactions: usize, forced_every: Option<usize>) -> Self {
        let first_window = (transactions / Self::FIRST_WINDOW_SHARE)
            .clamp(Self::MIN_FIRST_WINDOW, Self::FIRST_WINDOW);
        Self { forced_every, first_window, ..Default::default() }
    }

    /// Records the validation of a transaction that committed through the speculative path,
    /// and whether it waited for the transaction it follows.
    fn record(&mut self, failed: bool, chained: bool, throttled: &AtomicBool) {
        if self.throttled_left > 0 {
            // Executed before the throttle came on: it counts against the window (a forced
            // window is kept whole, so that the tests forcing windows get them at any
            // thread count).
            if self.forced_every.is_none() {
                self.ran_in_window(1, throttled);
            }
            return;
        }
        self.since_window += 1;
        self.average = self.average * 0.875 + if failed { 0.125 } else { 0.0 };
        self.chained = self.chained * (63.0 / 64.0) + if chained { 1.0 / 64.0 } else { 0.0 };
        if let Some(every) = self.forced_every.filter(|every| self.since_window >= *every) {
            self.engage(every, throttled);
        } else if self.average > Self::THROTTLE_ABOVE || self.chained > Self::CHAINED_ABOVE {
            let window = if self.window > 0 && self.since_window <= Self::REENGAGED_WITHIN {
                (self.window * 2).min(Self::MAX_WINDOW)
            } else {
                self.first_window
            };
            self.engage(window, throttled);
        }
    }

    fn engage(&mut self, window: usize, throttled: &AtomicBool) {
        self.window = window;
        self.throttled_left = window;
        throttled.store(true, Ordering::Relaxed);
    }

    /// Transactions of the current window left to run (0 when the throttle is off).
    fn window_left(&self) -> usize {
        self.throttled_left
    }

    /// `count` transactions of the current window committed.
    fn ran_in_window(&mut self, count: usize, throttled: &AtomicBool) {
        self.throttled_left = self.throttled_left.saturating_sub(count);
        if self.throttled_left == 0 {
            // Probe again, remembering that conflicts were frequent.
            self.average = Self::THROTTLE_ABOVE * 0.75;
            self.since_window = 0;
            throttled.store(false, Ordering::Relaxed);
        }
    }
}

/// Counters one worker keeps for the block's statistics.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) executions: usize,
    pub(crate) reexecutions: usize,
    pub(crate) validation_failures: usize,
    pub(crate) deferred: usize,
    pub(crate) in_order: usize,
    pub(crate) hoisted: usize,
    pub(crate) execute_time: Duration,
    pub(crate) validate_time: Duration,
    pub(crate) finalize_time: Duration,
    pub(crate) commit_time: Duration,
    pub(crate) idle_time: Duration,
}

/// The shared scheduling state of one block.
#[derive(Debug)]
pub(crate) struct Scheduler {
    next_exec: CachePadded<AtomicUsize>,
    /// The commit frontier, readable without the commit lock.
    frontier: CachePadded<AtomicUsize>,
    /// Set while conflicts are so frequent that workers stop speculating (see [`ConflictRate`]).
    throttled: CachePadded<AtomicBool>,
    done: CachePadded<AtomicBool>,
    failed: AtomicBool,
    fatal: Mutex<Option<ExecutionError>>,
    slots: Box<[TxSlot]>,
    /// Heavy transactions ([`Predictions::heavy`]), in block order, that workers take before
    /// any other ([`Self::take_hoisted`]); empty on one worker. Only that path runs them: the
    /// counter skips them and in-order windows stop before them.
    hoisted: Box<[TxIdx]>,
    /// The next entry of `hoisted` to hand out.
    next_hoisted: CachePadded<AtomicUsize>,
    /// Whether the committer holds fees not credited yet (`CommitState::fees`). Set before
    /// the frontier passes the transaction that owes them, cleared after they are credited.
    fees_pending: CachePadded<AtomicBool>,
    predictions: Predictions,
    /// Per call group (indexed by its name, see [`Predictions::call_group`]): whether its calls
    /// keep failing validation, so that each waits for the previous one. Set by the committer
    /// ([`Self::learn`]), never cleared within the block.
    hot_calls: Box<[AtomicBool]>,
    commit: CachePadded<Mutex<CommitState>>,
}

impl Scheduler {
    /// Scheduling state for a block of `transactions`, with the predicted dependencies.
    ///
    /// `in_order_every`: see [`crate::ExecuteOptions::in_order_every`]. With more than one
    /// worker, the predicted heavy transactions start first.
    pub(crate) fn new(
        transactions: usize,
        workers: usize,
        predictions: Predictions,
        in_order_every: Option<usize>,
    ) -> Self {
        // The counter hands the first `workers` transactions out at once anyway.
        let hoisted = if workers > 1 {
            predictions.heavy().iter().map(|tx| *tx as TxIdx).filter(|tx| *tx >= workers).collect()
        } else {
            Box::default()
        };
        Self {
            next_exec: CachePadded::new(AtomicUsize::new(0)),
            frontier: CachePadded::new(AtomicUsize::new(0)),
            throttled: CachePadded::new(AtomicBool::new(false)),
            done: CachePadded::new(AtomicBool::new(transactions == 0)),
            failed: AtomicBool::new(false),
            fatal: Mutex::new(None),
            slots: (0..transactions)
                .map(|_| TxSlot { status: AtomicU8::new(PENDING), data: Mutex::default() })
                .collect(),
            hoisted,
            next_hoisted: CachePadded::new(AtomicUsize::new(0)),
            fees_pending: CachePadded::new(AtomicBool::new(false)),
            predictions,
            hot_calls: (0..transactions).map(|_| AtomicBool::new(false)).collect(),
            commit: CachePadded::new(Mutex::new(CommitState {
                next: 0,
                gas: BlockGas::default(),
                results: Vec::with_capacity(transactions),
                dependencies: Vec::new(),
                conflicts: ConflictRate::new(transactions, in_order_every),
                call_failures: Vec::new(),
                fees: None,
            })),
        }
    }

    /// Marks the block's first `results.len()` transactions committed, with their results and
    /// the gas they used: the policy's probe ran them on the sequential engine, and their
    /// writes are published. Called before any worker starts.
    pub(crate) fn start_after(&self, results: Vec<TxResult>, gas: BlockGas) {
        let committed = results.len().min(self.slots.len());
        for slot in &self.slots[..committed] {
            slot.status.store(COMMITTED, Ordering::Relaxed);
        }
        self.next_exec.store(committed, Ordering::Relaxed);
        self.next_hoisted
            .store(self.hoisted.partition_point(|tx| *tx < committed), Ordering::Relaxed);
        self.frontier.store(committed, Ordering::Relaxed);
        if committed == self.slots.len() {
            self.done.store(true, Ordering::Relaxed);
        }
        let mut commit = self.commit.lock();
        commit.next = committed;
        commit.gas = gas;
        commit.results = results;
    }

    /// The block's outcome once every worker has returned: results, gas, and (when tracing)
    /// each transaction's dependencies.
    #[allow(clippy::type_complexity)]
    pub(crate) fn finish(
        self,
    ) -> Result<(Vec<TxResult>, BlockGas, Vec<Vec<TxIdx>>), ExecutionError> {
        if let Some(error) = self.fatal.into_inner() {
            return Err(error);
        }
        let commit = CachePadded::into_inner(self.commit).into_inner();
        if commit.next != self.slots.len() {
            return Err(ExecutionError::Invariant("workers stopped before every commit"));
        }
        Ok((commit.results, commit.gas, commit.dependencies))
    }

    /// Whether every transaction has committed (and nothing failed).
    pub(crate) fn succeeded(&self) -> bool {
        self.done.load(Ordering::Acquire) && !self.failed.load(Ordering::Acquire)
    }

    fn fail(&self, error: ExecutionError) {
        let mut fatal = self.fatal.lock();
        if fatal.is_none() {
            *fatal = Some(error);
        }
        self.failed.store(true, Ordering::Release);
    }

    /// The loop every worker runs until the block is committed or has failed.
    pub(crate) fn run_worker<'a, S: StateSource + ?Sized>(
        &self,
        shared: &'a Shared<'a, S>,
        evm: &mut ParEvm<'a, S>,
        stats: &mut WorkerStats,
    ) {
        // Executions are not timed one by one (two clock reads per transaction were 3% of a
        // block of cheap transactions): what is neither commit nor idle time is execution.
        let started = Instant::now();
        self.work(shared, evm, stats);
        stats.execute_time = started.elapsed().saturating_sub(stats.commit_time + stats.idle_time);
    }

    fn work<'a, S: StateSource + ?Sized>(
        &self,
        shared: &'a Shared<'a, S>,
        evm: &mut ParEvm<'a, S>,
        stats: &mut WorkerStats,
    ) {
        let mut writes = WriteSet::default();
        let mut follow = Vec::new();
        let backoff = crossbeam_utils::Backoff::new();
        let n = self.slots.len();
        loop {
            if self.failed.load(Ordering::Acquire) || self.done.load(Ordering::Acquire) {
                return;
            }
            // Only contend for the commit lock when the frontier can move: its transaction has
            // executed, or (throttled) nobody has taken it yet and the committer will run it.
            let throttled = self.throttled.load(Ordering::Relaxed);
            let frontier = self.frontier.load(Ordering::Acquire);
            let frontier_ready = self.slots.get(frontier).is_none_or(|slot| {
                let status = slot.status.load(Ordering::Acquire);
                status == EXECUTED
                    || status == DEFERRED
                    || (throttled
                        && self.next_exec.load(Ordering::Relaxed) == frontier
                        && !self.is_hoisted(frontier))
            });
            let commit = if frontier_ready { self.commit.try_lock() } else { None };
            if let Some(mut commit) = commit {
                let started = Instant::now();
                let committed = self.commit_ready(&mut commit, shared, evm, &mut writes, stats);
                stats.commit_time += started.elapsed();
                match committed {
                    Ok(true) => {
                        self.done.store(true, Ordering::Release);
                        return;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        self.fail(error);
                        return;
                    }
                }
            }
            if let Some(index) = self.take_hoisted() {
                // Before the throttle: only this path runs a hoisted transaction.
                stats.hoisted += 1;
                self.execute_and_follow(index, shared, evm, &mut writes, &mut follow, stats);
                backoff.reset();
                continue;
            }
            if self.throttled.load(Ordering::Relaxed) {
                // Conflicts are so frequent that speculation only wastes work: the committer
                // executes transactions in order until the throttle lifts.
                let started = Instant::now();
                backoff.snooze();
                stats.idle_time += started.elapsed();
                continue;
            }
            let index = self.next_exec.fetch_add(1, Ordering::Relaxed);
            if index < n {
                if self.is_hoisted(index) {
                    // Handed out by `take_hoisted`.
                } else if self.set_aside(index) {
                    stats.deferred += 1;
                } else {
                    self.execute_and_follow(index, shared, evm, &mut writes, &mut follow, stats);
                }
                backoff.reset();
            } else {
                let started = Instant::now();
                backoff.snooze();
                stats.idle_time += started.elapsed();
            }
        }
    }

    /// The next heavy transaction to start before the others, if one is left: each is handed
    /// out once.
    fn take_hoisted(&self) -> Option<TxIdx> {
        if self.next_hoisted.load(Ordering::Relaxed) >= self.hoisted.len() {
            return None;
        }
        self.hoisted.get(self.next_hoisted.fetch_add(1, Ordering::Relaxed)).copied()
    }

    /// Whether `index` is a heavy transaction that only [`Self::take_hoisted`] hands out.
    fn is_hoisted(&self, index: TxIdx) -> bool {
        !self.hoisted.is_empty() && self.hoisted.binary_search(&index).is_ok()
    }

    /// Sets `index` (just taken from the counter) aside when the transaction it is predicted
    /// to follow has not executed yet. Returns whether it did; `false` means: execute it now.
    fn set_aside(&self, index: TxIdx) -> bool {
        let Some(followed) = self.predecessor(index) else { return false };
        let followed = &self.slots[followed].status;
        if followed.load(Ordering::SeqCst) >= EXECUTED {
            return false;
        }
        self.slots[index].status.store(DEFERRED, Ordering::SeqCst);
        // The transaction followed may have finished meanwhile, and looked for deferred
        // followers before this one was: then claim it back (see the invariants).
        !(followed.load(Ordering::SeqCst) >= EXECUTED && self.claim(index))
    }

    /// The transaction `index` waits for: the nearest of the one it is predicted to follow
    /// and, when its call group has turned out hot, the group's previous call.
    fn predecessor(&self, index: TxIdx) -> Option<TxIdx> {
        self.predictions.followed(index).max(self.learned_predecessor(index))
    }

    /// The previous call of `index`'s group, when the group has turned out hot.
    fn learned_predecessor(&self, index: TxIdx) -> Option<TxIdx> {
        self.predictions
            .call_group(index)
            .filter(|group| self.hot_calls[*group].load(Ordering::SeqCst))
            .and_then(|_| self.predictions.previous_call(index))
    }

    /// The transactions that may wait for `index` (see [`Self::predecessor`]).
    fn successors(&self, index: TxIdx) -> impl Iterator<Item = TxIdx> + '_ {
        let learned = self
            .predictions
            .call_group(index)
            .filter(|group| self.hot_calls[*group].load(Ordering::SeqCst))
            .and_then(|_| self.predictions.next_call(index));
        self.predictions
            .followers_of(index)
            .chain(learned)
            .filter(move |follower| self.predecessor(*follower) == Some(index))
    }

    /// Counts a commit of `index` through the speculative path, and whether its validation
    /// failed on a write of the previous call of its group; a call group whose calls keep
    /// failing so turns hot: from then on each of its calls waits for the previous one, as a
    /// predicted follower does. "Keep failing": at least [`Self::HOT_AFTER`] such failures,
    /// and one in [`Self::HOT_SHARE`] of the group's commits since the first. A counter's
    /// increments run side by side fail so; a token's `transfer`s between distinct holders, or
    /// a router's swaps on different pools, do not (they fail on other writes, if at all).
    fn learn(&self, commit: &mut CommitState, index: TxIdx, failed: bool) {
        let Some(group) = self.predictions.call_group(index) else { return };
        if commit.call_failures.is_empty() {
            if !failed {
                return;
            }
            commit.call_failures = vec![(0, 0); self.slots.len()];
        }
        let (failures, commits) = &mut commit.call_failures[group];
        *commits += 1;
        *failures += u32::from(failed);
        if failed && *failures >= Self::HOT_AFTER && *failures * Self::HOT_SHARE >= *commits {
            self.hot_calls[group].store(true, Ordering::SeqCst);
        }
    }

    const HOT_AFTER: u32 = 3;
    const HOT_SHARE: u32 = 8;

    /// Takes a deferred transaction for execution; `true` for exactly one caller.
    fn claim(&self, index: TxIdx) -> bool {
        self.slots[index]
            .status
            .compare_exchange(DEFERRED, PENDING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Executes `index`, then every deferred transaction that follows it (and those that follow
    /// them), as long as this worker can claim them.
    fn execute_and_follow<'a, S: StateSource + ?Sized>(
        &self,
        index: TxIdx,
        shared: &'a Shared<'a, S>,
        evm: &mut ParEvm<'a, S>,
        writes: &mut WriteSet,
        follow: &mut Vec<TxIdx>,
        stats: &mut WorkerStats,
    ) {
        let taken = index;
        follow.push(index);
        while let Some(index) = follow.pop() {
            let slot = &self.slots[index];
            let mut data = slot.data.lock();
            // Every other one was set aside until the transaction it follows had executed.
            data.waited = index != taken;
            self.run_incarnation(index, &mut data, shared, evm, writes, stats);
            drop(data);
            slot.status.store(EXECUTED, Ordering::SeqCst);
            // Highest first onto the stack, so the lowest follower runs next.
            let start = follow.len();
            follow.extend(self.successors(index).filter(|f| self.claim(*f)));
            follow[start..].sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    fn run_incarnation<'a, S: StateSource + ?Sized>(
        &self,
        index: TxIdx,
        data: &mut TxData,
        shared: &'a Shared<'a, S>,
        evm: &mut ParEvm<'a, S>,
        writes: &mut WriteSet,
        stats: &mut WorkerStats,
    ) {
        let frontier_reached = self.frontier.load(Ordering::Acquire) >= index;
        // Loaded after the frontier: fees of transactions below `index` were added before the
        // frontier passed them, so `false` here means they are credited and visible.
        let fees_pending = frontier_reached && self.fees_pending.load(Ordering::Acquire);
        let execution = execute_tx(evm, index, &shared.block.transactions[index], writes);
        let fee = evm.0.ctx.journaled_state.database.deferred_fee.take();
        if data.written.capacity() == 0 {
            // Buffers a commit gave back, instead of growing new ones entry by entry.
            let db = &mut evm.0.ctx.journaled_state.database;
            data.written = db.spare_written.pop().unwrap_or_default();
            if data.credited.capacity() == 0 {
                data.credited = db.spare_credited.pop().unwrap_or_default();
            }
        }
        shared.mv.publish(index, writes, &mut data.written, &mut data.credited);
        // An incarnation that owes no fee loaded the beneficiary.
        data.reads_final = frontier_reached && !(fees_pending && fee.is_none());
        if data.reads_final && !shared.trace {
            // Nothing will validate these reads: the worker keeps its buffer for the next
            // execution instead of allocating a new one (always so on one worker).
            data.reads.clear();
        } else {
            let db = &mut evm.0.ctx.journaled_state.database;
            std::mem::swap(&mut data.reads, &mut db.reads);
            if db.reads.capacity() == 0 {
                // A buffer a commit gave back, instead of growing a new one read by read.
                db.reads = db.spare_reads.pop().unwrap_or_default();
            }
        }
        let outcome = Outcome { execution, fee };
        match &mut data.outcome {
            // A re-execution: its box is the previous incarnation's.
            Some(boxed) => **boxed = outcome,
            None => {
                // A box a commit gave back, instead of allocating one per transaction.
                let db = &mut evm.0.ctx.journaled_state.database;
                data.outcome = Some(match db.spare_outcomes.pop() {
                    Some(mut boxed) => {
                        *boxed = outcome;
                        boxed
                    }
                    None => Box::new(outcome),
                });
            }
        }
        stats.executions += 1;
    }

    /// Commits as many transactions as are ready, in order. Returns whether all are committed.
    fn commit_ready<'a, S: StateSource + ?Sized>(
        &self,
        commit: &mut CommitState,
        shared: &'a Shared<'a, S>,
        evm: &mut ParEvm<'a, S>,
        writes: &mut WriteSet,
        stats: &mut WorkerStats,
    ) -> Result<bool, ExecutionError> {
        let context = &shared.block.context;
        loop {
            let j = commit.next;
            if j == self.slots.len() {
                self.flush_fees(commit, shared, j)?;
                return Ok(true);
            }
            let slot = &self.slots[j];
            let mut inline = false;
            let mut waited = false;
            if slot.status.load(Ordering::Acquire) != EXECUTED {
                let throttled = self.throttled.load(Ordering::Relaxed);
                if throttled && !shared.trace {
                    // The rest of the window runs in order on the sequential engine, over as
                    // many transactions from `j` on as nobody is running.
                    let end = self.take_window(j, commit.conflicts.window_left());
                    if end == j {
                        return Ok(false);
                    }
                    // The window reads the beneficiary as it stands.
                    self.flush_fees(commit, shared, j)?;
                    self.commit_window(commit, shared, j..end, stats)?;
                    continue;
                }
                // Deferred, or (throttled while tracing: the dependency trace needs every
                // transaction's own reads) nobody took it: run it here, final at once.
                waited = self.claim(j);
                if !waited
                    && (!throttled
                        || self.is_hoisted(j)
                        || self
                            .next_exec
                            .compare_exchange(j, j + 1, Ordering::AcqRel, Ordering::Relaxed)
                            .is_err())
                {
                    return Ok(false);
                }
                inline = true;
            }
            let tx = &shared.block.transactions[j];
            let mut data = slot.data.lock();
            if inline {
                // Final at once: it must see every fee below it.
                self.flush_fees(commit, shared, j)?;
                data.waited = waited;
                self.run_incarnation(j, &mut data, shared, evm, writes, stats);
            }
            // The fee the committed incarnation owes the beneficiary.
            let mut fee = None;
            let result = match commit.gas.check(context, tx) {
                Err(invalid) => {
                    // Invalid for this block whatever it did: it must have written nothing.
                    shared.mv.retract_all(j, &mut data.written);
                    data.outcome = None;
                    Err(invalid)
                }
                Ok(()) => {
                    // An incarnation that owes no fee loaded the beneficiary (or paid none): it
                    // is checked against every fee below it.
                    let loaded_beneficiary =
                        data.outcome.as_ref().is_some_and(|outcome| outcome.fee.is_none());
                    if loaded_beneficiary {
                        self.flush_fees(commit, shared, j)?;
                    }
                    let valid = inline || data.reads_final || {
                        // Timed only when there is something to check (clock reads add up).
                        let started = Instant::now();
                        let valid = validate(&shared.mv, shared.source, j, &data.reads)
                            .map_err(|error| db_error(j, error))?;
                        stats.validate_time += started.elapsed();
                        valid
                    };
                    // A transaction that waited for the one it follows (a predicted follower,
                    // or a call behind the previous one of its hot group) ran after it, not
                    // beside it: when nearly every transaction waits, the block is a chain that
                    // the in-order windows run best.
                    commit.conflicts.record(!valid, data.waited, &self.throttled);
                    if !inline {
                        // Failed on a write of the previous call of its group?
                        let on_previous_call = !valid
                            && self.predictions.previous_call(j).is_some_and(|previous| {
                                dependencies(&shared.mv, j, &data.reads).contains(&previous)
                            });
                        self.learn(commit, j, on_previous_call);
                    }
                    if !valid {
                        stats.validation_failures += 1;
                        stats.reexecutions += 1;
                        self.flush_fees(commit, shared, j)?;
                        self.run_incarnation(j, &mut data, shared, evm, writes, stats);
                    }
                    let Some(mut boxed) = data.outcome.take() else {
                        return Err(ExecutionError::Invariant("executed without outcome"));
                    };
                    let outcome = std::mem::replace(&mut *boxed, Outcome::SPENT);
                    let db = &mut evm.0.ctx.journaled_state.database;
                    if db.spare_outcomes.len() < SPARES {
                        db.spare_outcomes.push(boxed);
                    }
                    fee = outcome.fee;
                    match outcome.execution {
                        Ok(result) => Ok(commit.gas.add(tx, result)),
                        Err(TxFailure::Invalid(invalid)) => Err(invalid),
                        Err(TxFailure::Fatal(error)) => return Err(error),
                    }
                }
            };
            if shared.trace {
                let dependencies = match result {
                    Ok(_) => dependencies(&shared.mv, j, &data.reads),
                    Err(_) => Vec::new(),
                };
                commit.dependencies.push(dependencies);
            }
            if result.is_ok() {
                if let Some(fee) = fee {
                    let sum = commit.fees.map_or(U256::ZERO, |(_, sum)| sum);
                    commit.fees = Some((j, sum.saturating_add(fee)));
                    if !self.fees_pending.load(Ordering::Relaxed) {
                        // Before the frontier passes `j` (see `run_incarnation`).
                        self.fees_pending.store(true, Ordering::Release);
                    }
                    if shared.trace {
                        // The dependency trace names each transaction whose fee a reader of
                        // the beneficiary depends on.
                        self.flush_fees(commit, shared, j)?;
                    }
                }
                shared
                    .mv
                    .commit(j, &data.credited, |address| base_account(shared.source, address))
                    .map_err(|error| db_error(j, error))?;
            }
            // A committed transaction's read and write sets are never needed again; their
            // buffers go to this worker's spares for its next executions.
            let db = &mut evm.0.ctx.journaled_state.database;
            give_back(&mut db.spare_reads, std::mem::take(&mut data.reads));
            give_back(&mut db.spare_written, std::mem::take(&mut data.written));
            give_back(&mut db.spare_credited, std::mem::take(&mut data.credited));
            commit.results.push(result);
            slot.status.store(COMMITTED, Ordering::Release);
            commit.next += 1;
            self.frontier.store(commit.next, Ordering::Release);
        }
    }

    /// Credits the beneficiary with the fees committed transactions owe it and that are not
    /// credited yet, as one credit at the last of them; `j` is the commit frontier.
    ///
    /// Transactions that never loaded the beneficiary owe it their fee (see
    /// [`super::vm`]). Crediting each at its commit cost a version of the beneficiary per
    /// transaction, in an entry every commit moved between the cores. The committer adds them
    /// up instead and credits the sum before anything may read the beneficiary at the
    /// frontier: before it validates a transaction that loaded it, before it runs one itself
    /// (inline, re-executed, or in an in-order window) and at the end of the block. The sum
    /// folds exactly as the credits one by one would ([`super::mv_memory::apply_credits_in_order`]:
    /// only the first credit can create the account, and the sum has the same first term's
    /// effect on an empty one). A reader ahead of the frontier misses fees not credited yet,
    /// as it misses those of uncommitted transactions; validation, after the flush, catches it.
    fn flush_fees<S: StateSource + ?Sized>(
        &self,
        commit: &mut CommitState,
        shared: &Shared<'_, S>,
        j: TxIdx,
    ) -> Result<(), ExecutionError> {
        let Some((last, sum)) = commit.fees.take() else { return Ok(()) };
        let beneficiary = shared.block.context.header.beneficiary;
        if shared.mv.credit_on_commit(last, beneficiary, sum) {
            shared
                .mv
                .commit(last, &[beneficiary], |address| base_account(shared.source, address))
                .map_err(|error| db_error(j, error))?;
        }
        self.fees_pending.store(false, Ordering::Release);
        Ok(())
    }

    /// Takes transactions `j..` for an in-order window of at most `len`: those set aside
    /// (claimed here) and those nobody has taken yet (taken from the counter), up to the first
    /// one another worker runs or has executed. Returns the window's end (`j`: none).
    fn take_window(&self, j: TxIdx, len: usize) -> TxIdx {
        // A window ends before the next hoisted transaction: its worker runs it.
        let next_hoisted = self
            .hoisted
            .get(self.hoisted.partition_point(|tx| *tx < j))
            .copied()
            .unwrap_or(usize::MAX);
        let limit = (j + len.max(1)).min(self.slots.len()).min(next_hoisted);
        let mut end = j;
        while end < limit {
            let next = self.next_exec.load(Ordering::Acquire);
            if end >= next {
                match self.next_exec.compare_exchange(
                    next,
                    limit,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return limit,
                    Err(_) => continue,
                }
            }
            if !self.claim(end) {
                break;
            }
            end += 1;
        }
        end
    }

    /// Runs `window` in order on the sequential engine ([`super::in_order`]) and commits it.
    /// The caller holds the commit lock, every transaction below the window is committed and
    /// nobody else can take one in it.
    fn commit_window<'a, S: StateSource + ?Sized>(
        &self,
        commit: &mut CommitState,
        shared: &'a Shared<'a, S>,
        window: std::ops::Range<TxIdx>,
        stats: &mut WorkerStats,
    ) -> Result<(), ExecutionError> {
        let executions = &mut stats.executions;
        in_order::run_window(
            shared,
            window.clone(),
            &mut commit.gas,
            &mut commit.results,
            executions,
        )?;
        commit.conflicts.ran_in_window(window.len(), &self.throttled);
        stats.in_order += window.len();
        for slot in &self.slots[window.clone()] {
            slot.status.store(COMMITTED, Ordering::Release);
        }
        commit.next = window.end;
        self.frontier.store(window.end, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, BlockContext};
    use crate::outcome::InvalidTx;
    use alloy_primitives::{Address, TxKind, U256};
    use revm::{context::TxEnv, primitives::hardfork::SpecId};

    /// A scheduler for transactions from `senders` (so equal senders are predicted to follow).
    fn scheduler(senders: &[u8]) -> Scheduler {
        let transactions = senders
            .iter()
            .map(|sender| TxEnv {
                caller: Address::repeat_byte(*sender),
                // A payment: no bare call, so only the senders link transactions.
                kind: TxKind::Call(Address::repeat_byte(0xee)),
                value: U256::from(1),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let block =
            Block { context: BlockContext::new(SpecId::CANCUN, Default::default()), transactions };
        Scheduler::new(senders.len(), 2, Predictions::of(&block), None)
    }

    fn status(scheduler: &Scheduler, tx: TxIdx) -> u8 {
        scheduler.slots[tx].status.load(Ordering::SeqCst)
    }

    #[test]
    fn a_follower_of_a_running_transaction_is_set_aside_and_claimed_once() {
        // 1 follows 0 (same sender); 2 follows nothing.
        let scheduler = scheduler(&[1, 1, 2]);
        assert!(!scheduler.set_aside(0), "nothing to follow");
        assert!(!scheduler.set_aside(2), "nothing to follow");
        assert!(scheduler.set_aside(1), "0 has not executed yet");
        assert_eq!(status(&scheduler, 1), DEFERRED);
        assert!(scheduler.claim(1), "the first claim takes it");
        assert_eq!(status(&scheduler, 1), PENDING);
        assert!(!scheduler.claim(1), "and no other claim does");
        assert!(!scheduler.claim(2), "a transaction never set aside cannot be claimed");
    }

    #[test]
    fn a_follower_of_an_executed_transaction_runs_at_once() {
        let scheduler = scheduler(&[1, 3, 1, 1]);
        scheduler.slots[0].status.store(EXECUTED, Ordering::SeqCst);
        assert!(!scheduler.set_aside(2), "0 has executed: run 2 now");
        assert_eq!(status(&scheduler, 2), PENDING);
        // 3 follows 2, which is still running.
        assert!(scheduler.set_aside(3));
        scheduler.slots[2].status.store(COMMITTED, Ordering::SeqCst);
        assert!(!scheduler.set_aside(3), "committed counts as executed");
    }

    /// A scheduler for payments from distinct senders on `workers`, those at `heavy` allowed
    /// a block's worth of gas each.
    fn with_heavy(n: usize, heavy: &[usize], workers: usize) -> Scheduler {
        let transactions = (0..n)
            .map(|i| TxEnv {
                caller: Address::with_last_byte(i as u8 + 1),
                kind: TxKind::Call(Address::repeat_byte(0xee)),
                value: U256::from(1),
                gas_limit: if heavy.contains(&i) { 30_000_000 } else { 21_000 },
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let block =
            Block { context: BlockContext::new(SpecId::CANCUN, Default::default()), transactions };
        Scheduler::new(n, workers, Predictions::of(&block), None)
    }

    #[test]
    fn heavy_transactions_are_handed_out_first_and_only_once() {
        let scheduler = with_heavy(10, &[6, 8], 2);
        assert_eq!(scheduler.take_hoisted(), Some(6));
        assert_eq!(scheduler.take_hoisted(), Some(8));
        assert_eq!(scheduler.take_hoisted(), None, "each once");
        assert!(scheduler.is_hoisted(6) && scheduler.is_hoisted(8) && !scheduler.is_hoisted(7));
        // An in-order window stops before a hoisted transaction, and starts none at one.
        assert_eq!(scheduler.take_window(0, 128), 6);
        assert_eq!(scheduler.take_window(6, 128), 6);
        assert_eq!(scheduler.take_window(7, 128), 7 + 1);
        assert_eq!(scheduler.take_window(9, 128), 10);
    }

    #[test]
    fn one_worker_the_first_transactions_and_a_probed_prefix_are_not_hoisted() {
        let single = with_heavy(10, &[6], 1);
        assert_eq!(single.take_hoisted(), None, "one worker runs the block in order");
        assert!(!single.is_hoisted(6));
        let first = with_heavy(10, &[1, 6], 2);
        assert_eq!(first.take_hoisted(), Some(6), "the counter hands 1 out at once anyway");
        let probed = with_heavy(10, &[2, 6], 2);
        let invalid = InvalidTx::BlockGasExceeded { gas_limit: 1, available: 0 };
        probed.start_after(vec![Err(invalid); 4], BlockGas::default());
        assert_eq!(probed.take_hoisted(), Some(6), "2 is committed already");
        assert_eq!(probed.take_hoisted(), None);
    }

    /// A scheduler for calls of one contract and selector from distinct senders.
    fn calls(n: u8) -> Scheduler {
        let transactions = (0..n)
            .map(|i| TxEnv {
                caller: Address::repeat_byte(i + 1),
                kind: TxKind::Call(Address::repeat_byte(0xcc)),
                data: alloy_primitives::Bytes::from_static(&[1, 2, 3, 4]),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let block =
            Block { context: BlockContext::new(SpecId::CANCUN, Default::default()), transactions };
        Scheduler::new(n as usize, 2, Predictions::of(&block), None)
    }

    #[test]
    fn a_call_group_failing_on_its_previous_call_turns_hot_and_chains() {
        let scheduler = calls(6);
        assert_eq!(scheduler.predecessor(4), None, "calls are not predicted to follow");
        let mut commit = scheduler.commit.lock();
        scheduler.learn(&mut commit, 1, true);
        scheduler.learn(&mut commit, 2, true);
        assert_eq!(scheduler.predecessor(4), None, "two failures are not enough");
        scheduler.learn(&mut commit, 3, true);
        assert_eq!(scheduler.predecessor(4), Some(3), "hot: each call waits for the previous");
        assert_eq!(scheduler.successors(3).collect::<Vec<_>>(), [4]);
        assert_eq!(scheduler.predecessor(0), None, "the first call has none");
    }

    #[test]
    fn rare_failures_do_not_chain_a_group() {
        let scheduler = calls(40);
        let mut commit = scheduler.commit.lock();
        scheduler.learn(&mut commit, 1, true);
        for j in 2..30 {
            scheduler.learn(&mut commit, j, false);
        }
        scheduler.learn(&mut commit, 30, true);
        scheduler.learn(&mut commit, 31, true);
        assert_eq!(scheduler.predecessor(32), None, "3 failures in 31 commits");
    }

    #[test]
    fn throttle_windows_double_while_conflicts_persist() {
        let throttled = AtomicBool::new(false);
        let mut rate = ConflictRate::new(1 << 20, None);
        let fail_until_throttled = |rate: &mut ConflictRate| {
            let mut commits = 0;
            while !throttled.load(Ordering::Relaxed) {
                rate.record(true, false, &throttled);
                commits += 1;
                assert!(commits < 100, "the throttle never came on");
            }
            commits
        };
        fail_until_throttled(&mut rate);
        assert_eq!(rate.window_left(), ConflictRate::FIRST_WINDOW);
        for window in [2, 4, 8, 16, 32, 32].map(|k| k * ConflictRate::FIRST_WINDOW) {
            rate.ran_in_window(rate.window_left(), &throttled);
            assert!(!throttled.load(Ordering::Relaxed));
            assert!(fail_until_throttled(&mut rate) <= ConflictRate::REENGAGED_WITHIN);
            assert_eq!(rate.window_left(), window.min(ConflictRate::MAX_WINDOW));
        }
        // Conflicts that come back only after a while start again from a short window.
        rate.ran_in_window(rate.window_left(), &throttled);
        for _ in 0..2 * ConflictRate::REENGAGED_WITHIN {
            rate.record(false, false, &throttled);
        }
        fail_until_throttled(&mut rate);
        assert_eq!(rate.window_left(), ConflictRate::FIRST_WINDOW);
    }

    #[test]
    fn a_small_block_starts_with_a_short_window() {
        let throttled = AtomicBool::new(false);
        for (transactions, first) in [(202, 12), (40, 8), (1_100, 68), (36_000, 128)] {
            let mut rate = ConflictRate::new(transactions, None);
            while !throttled.load(Ordering::Relaxed) {
                rate.record(true, false, &throttled);
            }
            assert_eq!(rate.window_left(), first, "{transactions} transactions");
            rate.ran_in_window(first, &throttled);
        }
    }

    #[test]
    fn mostly_chained_commits_throttle_but_a_third_do_not() {
        let throttled = AtomicBool::new(false);
        let mut rate = ConflictRate::new(1 << 20, None);
        for j in 0..3000 {
            rate.record(false, j % 3 == 0, &throttled);
        }
        assert!(!throttled.load(Ordering::Relaxed), "a third chained");
        for _ in 0..200 {
            rate.record(false, true, &throttled);
        }
        assert!(throttled.load(Ordering::Relaxed), "all chained");
    }
}
