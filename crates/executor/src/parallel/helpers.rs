//! Helper threads kept between blocks.
//!
//! Starting a thread costs 50-100 µs here (median; a millisecond at worst), about what a
//! whole small mainnet block takes to execute, and the new thread starts on cold caches. So
//! the engine keeps one pool of parked helper threads per helper count and lends it to one
//! block at a time; waking a parked thread costs ~20 µs. A block that finds the pool lent
//! out (several blocks executing at once, as the test runners do) starts scoped threads as
//! before, so blocks never queue behind each other.
//!
//! Waking is not free on a virtual machine: a parked helper's core halts, and the host takes
//! 35-130 µs (median ~50 µs, measured on this 2-vCPU kind) to run it again. So a block that
//! will probably run in parallel wakes its helpers first ([`Lease::wake`]) and sets itself up
//! (the policy's look at the block, the multi-version memory, the scheduler) while they come
//! up; they spin until [`Lease::run`] hands them the work.

use parking_lot::Mutex;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

/// A pool of `threads` parked helpers and whether a block holds it.
#[derive(Debug)]
struct Helpers {
    pool: rayon::ThreadPool,
    lent: AtomicBool,
    /// Set by [`Lease::wake`]: the helpers spin, awake, until it is cleared ([`Lease::run`],
    /// or the lease dropped) or [`WAKE_SPIN`] has passed.
    awake: AtomicBool,
}

/// The longest a woken helper spins for its work: far longer than any block's setup, so only
/// a lease dropped without running anything (which clears the flag anyway) would reach it.
const WAKE_SPIN: Duration = Duration::from_millis(2);

/// The longest the caller spins for the helpers to finish once its own share is done, before
/// it waits for them asleep: the helpers of a parallel block are then finishing their last
/// part of the finalisation, a few microseconds of work.
const FINISH_SPIN: Duration = Duration::from_micros(500);

/// The pools built so far, with their helper counts.
type Pools = Mutex<Vec<(usize, Arc<Helpers>)>>;

/// The pools, by helper count (built on first use).
static POOLS: OnceLock<Pools> = OnceLock::new();

/// A pool of helpers lent to one block; given back on drop.
#[derive(Debug)]
pub(crate) struct Lease(Arc<Helpers>);

impl Lease {
    /// The pool of `count` helpers, unless another block holds it (or it cannot be built).
    pub(crate) fn take(count: usize) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let helpers = {
            let mut pools = POOLS.get_or_init(Mutex::default).lock();
            match pools.iter().find(|(n, _)| *n == count) {
                Some((_, helpers)) => Arc::clone(helpers),
                None => {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(count)
                        .thread_name(|i| format!("lanes-helper-{i}"))
                        .build()
                        .ok()?;
                    let helpers = Arc::new(Helpers {
                        pool,
                        lent: AtomicBool::new(false),
                        awake: AtomicBool::new(false),
                    });
                    pools.push((count, Arc::clone(&helpers)));
                    helpers
                }
            }
        };
        helpers
            .lent
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| Self(helpers))
    }

    /// How many helpers the pool has.
    pub(crate) fn helpers(&self) -> usize {
        self.0.pool.current_num_threads()
    }

    /// Wakes every helper now, ahead of [`Self::run`], so that their cores come up while this
    /// thread prepares the work: each spins until `run` (or the lease's drop) releases it.
    pub(crate) fn wake(&self) {
        if self.0.awake.swap(true, Ordering::AcqRel) {
            return;
        }
        for _ in 0..self.0.pool.current_num_threads() {
            let helpers = Arc::clone(&self.0);
            self.0.pool.spawn(move || {
                let deadline = Instant::now() + WAKE_SPIN;
                let mut spins = 0u32;
                while helpers.awake.load(Ordering::Acquire) {
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(1024) && Instant::now() > deadline {
                        return;
                    }
                    std::hint::spin_loop();
                }
            });
        }
    }

    /// Runs `helper` on every helper thread and `caller` on this thread, and returns when all
    /// have finished.
    pub(crate) fn run<T: Send>(
        &self,
        helper: impl Fn() -> T + Sync,
        caller: impl FnOnce() -> T,
    ) -> Vec<T> {
        // Woken helpers stop spinning and take the jobs below.
        self.0.awake.store(false, Ordering::Release);
        let results = Mutex::new(Vec::new());
        let finished = AtomicUsize::new(0);
        let count = self.0.pool.current_num_threads();
        let mine = self.0.pool.in_place_scope(|scope| {
            for _ in 0..count {
                scope.spawn(|_| {
                    let result = helper();
                    results.lock().push(result);
                    finished.fetch_add(1, Ordering::Release);
                });
            }
            let mine = caller();
            // The scope would wait for the helpers' last moments asleep, and a halted core
            // takes 30-110 us to run this thread again (measured at the end of mainnet
            // blocks): spin a while first.
            let deadline = Instant::now() + FINISH_SPIN;
            let mut spins = 0u32;
            while finished.load(Ordering::Acquire) < count {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(256) && Instant::now() > deadline {
                    break;
                }
                std::hint::spin_loop();
            }
            mine
        });
        let mut all = vec![mine];
        all.append(&mut results.into_inner());
        all
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.awake.store(false, Ordering::Release);
        self.0.lent.store(false, Ordering::Release);
    }
}

/// The last round trip measured, and when.
static ROUND_TRIP: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);
/// A round trip older than this is measured again: on a virtual machine it changes when the
/// host moves the vCPUs, which it does every few minutes.
const ROUND_TRIP_KEPT: Duration = Duration::from_secs(1);
/// Round trips per batch, and batches (the median batch counts).
const ROUND_TRIP_BATCH: u32 = 16;
const ROUND_TRIP_BATCHES: usize = 5;
/// Either side gives up after this long (the helper did not wake: the machine is busy).
const ROUND_TRIP_LIMIT: Duration = Duration::from_millis(2);

/// How long a cache line takes to go from this thread's core to the first helper's and back:
/// what the parallel engine's workers pay on every line they share. Measured at most once a
/// second (~5 µs with the cores close, ~40 µs far apart, plus waking the helper), with the
/// helper pool of two-worker blocks (`lease`, when the caller holds it); `None` when another
/// block holds that pool and nothing was measured yet, or the helper did not answer in time.
pub(crate) fn round_trip(lease: Option<&Lease>) -> Option<Duration> {
    let last = *ROUND_TRIP.lock();
    if let Some((_, round_trip)) = last.filter(|(at, _)| at.elapsed() < ROUND_TRIP_KEPT) {
        return Some(round_trip);
    }
    let measured = match lease.filter(|lease| lease.helpers() == 1) {
        Some(lease) => measure_round_trip(lease),
        None => Lease::take(1).and_then(|lease| measure_round_trip(&lease)),
    };
    match measured {
        Some(round_trip) => {
            *ROUND_TRIP.lock() = Some((Instant::now(), round_trip));
            Some(round_trip)
        }
        None => last.map(|(_, round_trip)| round_trip),
    }
}

/// Passes a counter back and forth with the lease's first helper through one cache line.
fn measure_round_trip(lease: &Lease) -> Option<Duration> {
    let cell = AtomicU64::new(0);
    let deadline = Instant::now() + ROUND_TRIP_LIMIT;
    let total = u64::from(ROUND_TRIP_BATCH) * (ROUND_TRIP_BATCHES as u64 + 1);
    // Waits until the cell holds `value`; `false` past the deadline.
    let wait = |value: u64| {
        let mut spins = 0u32;
        while cell.load(Ordering::Acquire) != value {
            spins += 1;
            if spins.is_multiple_of(1024) && Instant::now() > deadline {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    };
    let echo = || {
        for i in 0..total {
            if !wait(2 * i + 1) {
                return;
            }
            cell.store(2 * i + 2, Ordering::Release);
        }
    };
    let mut batches = Vec::with_capacity(ROUND_TRIP_BATCHES);
    let ping = || {
        // The first batch wakes the helper and warms the line: not counted.
        for batch in 0..=ROUND_TRIP_BATCHES as u64 {
            let started = Instant::now();
            for i in batch * u64::from(ROUND_TRIP_BATCH)..(batch + 1) * u64::from(ROUND_TRIP_BATCH)
            {
                cell.store(2 * i + 1, Ordering::Release);
                if !wait(2 * i + 2) {
                    return;
                }
            }
            if batch > 0 {
                batches.push(started.elapsed() / ROUND_TRIP_BATCH);
            }
        }
    };
    lease.run(echo, ping);
    if batches.len() < ROUND_TRIP_BATCHES {
        return None;
    }
    batches.sort();
    Some(batches[ROUND_TRIP_BATCHES / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_lent_to_one_block_at_a_time_and_runs_every_helper() {
        let lease = Lease::take(3).expect("a fresh pool");
        assert!(Lease::take(3).is_none(), "lent out");
        let results = lease.run(|| 1, || 10);
        assert_eq!(results.iter().sum::<i32>(), 13, "three helpers and the caller");
        drop(lease);
        let again = Lease::take(3).expect("given back");
        assert_eq!(again.run(|| 1, || 10).len(), 4);
    }

    #[test]
    fn woken_helpers_take_the_work_and_a_dropped_lease_releases_them() {
        // Five helpers: a pool no block of the other tests uses.
        let lease = Lease::take(5).expect("a fresh pool");
        lease.wake();
        lease.wake(); // Once awake, not woken twice.
        assert!(lease.0.awake.load(Ordering::Acquire));
        let results = lease.run(|| 1, || 10);
        assert_eq!(results.iter().sum::<i32>(), 15, "five helpers and the caller");
        assert!(!lease.0.awake.load(Ordering::Acquire), "released by the run");
        lease.wake();
        let helpers = Arc::clone(&lease.0);
        drop(lease);
        assert!(!helpers.awake.load(Ordering::Acquire), "released by the drop");
        let again = Lease::take(5).expect("given back");
        assert_eq!(again.run(|| 1, || 10).len(), 6);
    }

    #[test]
    fn a_round_trip_is_measured_and_kept() {
        // `None` only when the helper did not answer within 2 ms (an oversubscribed machine).
        if let Some(measured) = round_trip(None) {
            assert!(measured > Duration::ZERO && measured < ROUND_TRIP_LIMIT, "{measured:?}");
            assert_eq!(round_trip(None), Some(measured), "kept, not measured again");
        } else {
            eprintln!("round trip not measured: the helper did not answer in time");
        }
    }
}
