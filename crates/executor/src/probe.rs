//! The adaptive policy's timed look at a block, for when the cores are far apart.
//!
//! The parallel engine's workers pay the core-to-core round trip on every cache line they
//! share (the transactions' results, the multi-version entries, the commit frontier). On the
//! CI kind of virtual machine that round trip is 30-80 ns or, minutes later when the host has
//! moved a vCPU, 360-470 ns, and at the long one cheap transactions lose: with the cores far
//! apart (~390 ns), `raw-transfers` (2.3 µs a transaction) ran 0.87x-0.90x of sequential,
//! `hot-30` 0.79x-0.82x, mainnet block 4330482 (4.1 µs) 0.86x, while `erc20` (4.7 µs) kept
//! 1.02x-1.11x, mainnet blocks of 13-18 µs a transaction 0.99x-1.25x and `uniswap` (44 µs)
//! 1.60x. Nothing known before executing tells these apart (their gas per transaction is
//! alike), but their time per transaction does.
//!
//! So while the round trip is long ([`FAR_ROUND_TRIP`], measured at most once a second with
//! the helper threads), a block the policy would run in parallel first runs its first
//! transactions on the sequential engine, timed. If a transaction takes at least
//! [`ROUND_TRIPS_PER_TX`] round trips and what is left of the block at least
//! [`ROUND_TRIPS_LEFT`], the parallel engine takes over after them (their writes become the
//! first committed ones, as an in-order window's do); otherwise the sequential engine
//! finishes the block, and the statistics say why. Nothing is executed twice either way. With
//! the cores close, nothing of this runs.

use crate::{
    block::Block,
    error::ExecutionError,
    outcome::{BlockOutput, FallbackReason, Probe},
    parallel::{self, predict::Predictions},
    sequential::Prefix,
    ExecuteOptions,
};
use lanes_state::StateSource;
use std::time::Duration;

/// A core-to-core round trip at least this long makes the policy time a block's first
/// transactions before running it in parallel.
pub const FAR_ROUND_TRIP: Duration = Duration::from_nanos(150);
/// The probe runs this share of the block (one in so many transactions)...
pub const PROBE_SHARE: usize = 16;
/// ...but at least this many transactions...
pub const MIN_PROBE: usize = 8;
/// ...and at most this many.
pub const MAX_PROBE: usize = 64;
/// A transaction must take this many round trips for the parallel engine to pay off: between
/// what the cheap transactions above took (6 and 12) and the dearer ones (35 and more).
pub const ROUND_TRIPS_PER_TX: u32 = 16;
/// What is left of the block after the probe must take this many round trips (1.2 ms at
/// 400 ns): starting the helpers, the tables and the final merge cost a small block more
/// than it gains (mainnet block 6196166, 1 ms, ran 0.82x with the cores far apart).
pub const ROUND_TRIPS_LEFT: u32 = 3_000;

/// Executes `block`, which the policy would run on the parallel engine with `threads`
/// workers, probing its first transactions first because the round trip is `round_trip`.
pub(crate) fn execute_probed<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
    predictions: Option<Predictions>,
    round_trip: Duration,
) -> Result<BlockOutput, ExecutionError> {
    let txs = block.transactions.len();
    let probed = (txs / PROBE_SHARE).clamp(MIN_PROBE, MAX_PROBE).min(txs);
    let prefix = Prefix::run(block, source, probed, None)?;
    let probe = Probe {
        transactions: probed,
        per_tx: prefix.time / u32::try_from(probed.max(1)).unwrap_or(u32::MAX),
        round_trip,
    };
    if pays_off(&probe, txs - probed) {
        let mut output = parallel::execute_parallel_predicted(
            block,
            source,
            threads,
            options,
            predictions,
            Some(prefix),
        )?;
        output.stats.probe = Some(probe);
        Ok(output)
    } else {
        let mut output = prefix.finish(block)?;
        output.stats.fallback = Some(FallbackReason::CheapTransactions(probe));
        output.stats.probe = Some(probe);
        Ok(output)
    }
}

/// Whether the `left` transactions after the probe should run in parallel.
fn pays_off(probe: &Probe, left: usize) -> bool {
    let left = u32::try_from(left).unwrap_or(u32::MAX);
    probe.per_tx >= probe.round_trip.saturating_mul(ROUND_TRIPS_PER_TX)
        && probe.per_tx.saturating_mul(left) >= probe.round_trip.saturating_mul(ROUND_TRIPS_LEFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(per_tx_ns: u64, round_trip_ns: u64) -> Probe {
        Probe {
            transactions: 16,
            per_tx: Duration::from_nanos(per_tx_ns),
            round_trip: Duration::from_nanos(round_trip_ns),
        }
    }

    #[test]
    fn cheap_transactions_or_small_blocks_stay_sequential_when_the_cores_are_far_apart() {
        // raw-transfers at 390 ns: 2.3 us a transaction.
        assert!(!pays_off(&probe(2_300, 390), 47_000));
        // uniswap: 44 us.
        assert!(pays_off(&probe(44_000, 390), 6_600));
        // A mainnet block of 13.6 us transactions, 180 left: 2.4 ms.
        assert!(pays_off(&probe(13_600, 390), 180));
        // 9 us transactions, 100 left: 0.9 ms, less than 3,000 round trips.
        assert!(!pays_off(&probe(9_000, 390), 100));
        // The same block with the cores close.
        assert!(pays_off(&probe(9_000, 60), 100));
    }
}
