//! Helper threads kept between blocks.
//!
//! Starting a thread costs 50-100 µs here (median; a millisecond at worst), about what a
//! whole small mainnet block takes to execute, and the new thread starts on cold caches. So
//! the engine keeps one pool of parked helper threads per helper count and lends it to one
//! block at a time; waking a parked thread costs ~20 µs. A block that finds the pool lent
//! out (several blocks executing at once, as the test runners do) starts scoped threads as
//! before, so blocks never queue behind each other.

use parking_lot::Mutex;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

/// A pool of `threads` parked helpers and whether a block holds it.
#[derive(Debug)]
struct Helpers {
    pool: rayon::ThreadPool,
    lent: AtomicBool,
}

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
                    let helpers = Arc::new(Helpers { pool, lent: AtomicBool::new(false) });
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

    /// Runs `helper` on every helper thread and `caller` on this thread, and returns when all
    /// have finished.
    pub(crate) fn run<T: Send>(
        &self,
        helper: impl Fn() -> T + Sync,
        caller: impl FnOnce() -> T,
    ) -> Vec<T> {
        let results = Mutex::new(Vec::new());
        let count = self.0.pool.current_num_threads();
        let mine = self.0.pool.in_place_scope(|scope| {
            for _ in 0..count {
                scope.spawn(|_| {
                    let result = helper();
                    results.lock().push(result);
                });
            }
            caller()
        });
        let mut all = vec![mine];
        all.append(&mut results.into_inner());
        all
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.lent.store(false, Ordering::Release);
    }
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
}
