//! How long a cache line takes to go from one core to another and back, on this machine, now.
//!
//! The parallel engine's workers share cache lines (the commit frontier, transaction statuses,
//! multi-version entries), so its speed depends on this latency. Two sequential copies side by
//! side (the machine's ceiling, see [`crate::measure`]) share nothing and never see it. On a
//! virtual machine it moves: the CI kind of machine measured a round trip of 80-110 ns and of
//! 400-570 ns minutes apart, as its two vCPUs landed on host cores that did or did not share a
//! cache. `lanes bench` measures it before each block's rounds (`Record::round_trip_ns`), so
//! that a slow parallel figure can be told from a slow placement.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Round trips per batch.
const BATCH: u64 = 2_000;
/// Batches; the median batch is reported.
const BATCHES: usize = 9;
/// Spins before a waiting side yields its core (on one core the other side must run).
const SPINS_BEFORE_YIELD: u32 = 10_000;
/// Give up after this long (an oversubscribed machine), reporting nothing.
const LIMIT: Duration = Duration::from_millis(500);

/// Waits until `cell` holds `value`; `false` when `deadline` passed first.
fn wait_for(cell: &AtomicU64, value: u64, deadline: Instant) -> bool {
    let mut spins = 0u32;
    while cell.load(Ordering::Acquire) != value {
        spins += 1;
        if spins == SPINS_BEFORE_YIELD {
            spins = 0;
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        std::hint::spin_loop();
    }
    true
}

/// The median round trip, in nanoseconds, of a value passed between this thread and another
/// through one shared cache line; `None` when the second thread cannot be started or the
/// measurement takes longer than half a second.
pub fn round_trip_ns() -> Option<f64> {
    let cell = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + LIMIT;
    let rounds = BATCH * BATCHES as u64;
    let echo = {
        let cell = Arc::clone(&cell);
        std::thread::Builder::new()
            .name("lanes-round-trip".into())
            .spawn(move || {
                for i in 0..rounds {
                    if !wait_for(&cell, 2 * i + 1, deadline) {
                        return;
                    }
                    cell.store(2 * i + 2, Ordering::Release);
                }
            })
            .ok()?
    };
    let mut batches = Vec::with_capacity(BATCHES);
    let mut completed = true;
    'batches: for batch in 0..BATCHES as u64 {
        let started = Instant::now();
        for i in batch * BATCH..(batch + 1) * BATCH {
            cell.store(2 * i + 1, Ordering::Release);
            if !wait_for(&cell, 2 * i + 2, deadline) {
                completed = false;
                break 'batches;
            }
        }
        batches.push(started.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    // The echo thread gives up by the deadline too, so this join cannot hang.
    let _ = echo.join();
    if !completed {
        return None;
    }
    batches.sort_by(f64::total_cmp);
    Some(batches[BATCHES / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_is_measured_and_plausible() {
        // Within half a second even on one core (the waiting side yields); the bounds only
        // rule out a broken measurement: no cache line crosses cores in under a nanosecond,
        // and a round trip of a millisecond would mean the sides never ran at once.
        if let Some(ns) = round_trip_ns() {
            assert!(ns > 1.0 && ns < 1_000_000.0, "round trip {ns} ns");
        } else {
            // Only an oversubscribed machine gives up; say so rather than pass silently.
            eprintln!("round trip not measured: the machine was too busy");
        }
    }
}
