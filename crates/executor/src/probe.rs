//! The adaptive policy's timed look at a block: is a transaction dear enough to share?
//!
//! The parallel engine costs something per transaction even on one worker (recording reads,
//! publishing writes into the multi-version tables, the commit, finalisation from the
//! tables: 0.5-1.7 us a transaction against the sequential engine, `lanes bench --engine
//! parallel --threads 1`), and at two workers every line they share also crosses between
//! the cores: the core-to-core round trip, which on the CI kind of virtual machine is
//! 40-70 ns or, minutes later when the host has moved a vCPU, 360-470 ns. Cheap transactions
//! do not pay that back: with the fair baseline, `raw-transfers` (1.5 us a transaction)
//! ran 0.58x of sequential at two workers far apart, `hot-30` (2 us) 0.66x, while `uniswap`
//! (44 us) ran 1.62x; mainnet blocks of 13-18 us a transaction gained. Nothing known before
//! executing tells these apart (their gas per transaction is alike), their time does.
//!
//! So a block the policy would run in parallel first runs its first thirty-second (8 to 64
//! transactions) on the sequential engine, timed, with the round trip measured at most once
//! a second with the helper threads: every block while the cores are far apart
//! ([`FAR_ROUND_TRIP`]), only large ones ([`MIN_PROBED_TXS_CLOSE`]) while they are close.
//! A mainnet block's first transactions are not like the rest: they pay the highest fees, and
//! are often transfers from exchanges (older blocks) or searchers' calls (newer ones). So the
//! rest of the block is not judged by the probe's mean time but by its own mix: the probed
//! plain transfers' mean time (no calldata) and the probed calls' mean time, weighted by how
//! many transfers and calls the rest has. On 15274915, 38 probed transactions took 31.7 us
//! each, the rest of the block (96% transfers) 3.5 us: this estimate read 3.4 us, and the
//! block, 0.76x-0.80x in parallel with the cores far apart, now stays sequential; 5283152's
//! first 8 were all transfers (2.0 us), the rest 16.7 us (estimate 12 us), and 12244000's
//! 10.6 us against 75 us (estimate 15 us): both now run in parallel. If a transaction of the
//! rest is expected to take at least [`MIN_TX_TIME`] plus [`ROUND_TRIPS_PER_TX`] round trips,
//! and all of the rest at least [`ROUND_TRIPS_LEFT`] round trips, the parallel engine takes
//! over after the probe (its writes become the first committed ones, as an in-order window's
//! do); otherwise the sequential engine finishes the block, and the statistics say why. The
//! probe also counts the transactions that wrote a storage slot an earlier one had written:
//! when they cap the speedup below the policy's chain bound, one hot slot chains the block and
//! it stays sequential too. Nothing is executed twice either way; what the probe costs a block
//! that then runs in parallel is the parallelism of its first thirty-second.
//!
//! A block the policy gives the lanes engine is probed too, for the hot slot only: a lane costs
//! about what the sequential engine does per transaction, so cheapness is no reason to
//! decline, but a hot slot makes the lanes lose an epoch before they hand the block to the
//! sequential engine (`hot-100`: 0.92x of sequential in the tables, 0.97x-0.99x probed). The
//! lanes then start after the probe, over its state.

use crate::{
    block::Block,
    error::ExecutionError,
    lanes,
    outcome::{BlockOutput, FallbackReason, Probe},
    parallel::{self, predict::Predictions},
    policy::MIN_CHAIN_PARALLELISM,
    sequential::Prefix,
    ExecuteOptions,
};
use lanes_state::StateSource;
use revm::context::TxEnv;
use std::time::Duration;

/// What a plain transfer is taken to cost when the probe ran none (the probe's read
/// 1.3-1.7 us on the mainnet fixtures, 2.1 us on `raw-transfers`).
pub const TRANSFER_TIME: Duration = Duration::from_nanos(1_500);
/// What a call is taken to cost when the probe ran none (the mainnet fixtures' probed calls
/// took 3-200 us, 20 us in the middle).
pub const CALL_TIME: Duration = Duration::from_micros(20);
/// A core-to-core round trip at least this long makes the policy probe every block; shorter
/// ones only blocks of [`MIN_PROBED_TXS_CLOSE`] transactions or more.
pub const FAR_ROUND_TRIP: Duration = Duration::from_nanos(150);
/// The smallest block probed while the cores are close.
pub const MIN_PROBED_TXS_CLOSE: usize = 2048;
/// The probe runs this share of the block (one in so many transactions)...
pub const PROBE_SHARE: usize = 32;
/// ...but at least this many transactions...
pub const MIN_PROBE: usize = 8;
/// ...and at most this many.
pub const MAX_PROBE: usize = 64;
/// A transaction must take at least this long, plus [`ROUND_TRIPS_PER_TX`] round trips, for
/// the parallel engine to pay off. With the cores close (~50 ns), `raw-transfers` (the probe
/// read 2.1-2.2 us a transaction: the first ones are the coldest) ran 0.97x forced onto two
/// workers, `hot-10` and `hot-30` (2.4-3.3 us) 1.13x-1.17x, `erc20` (4.9-5.3 us) 1.32x: the
/// bar sits between, at 2.3 us with 16 round trips of 50 ns.
pub const MIN_TX_TIME: Duration = Duration::from_nanos(1_500);
/// The round trips a transaction must take on top. Far apart (~390 ns) the bar is then
/// 7.7 us: forced onto two workers, `hot-30` (the probe read 3-4 us) ran 0.66x, `erc20`
/// (5.0-5.3 us) 0.96x, mainnet blocks of 13-18 us a transaction 1.18x-1.25x, `uniswap`
/// (40 us) 1.62x.
pub const ROUND_TRIPS_PER_TX: u32 = 16;
/// What is left of the block after the probe must take this many round trips (1.2 ms at
/// 400 ns): starting the helpers, the tables and the final merge cost a small block more
/// than it gains (mainnet block 6196166, 1 ms, ran 0.82x with the cores far apart).
pub const ROUND_TRIPS_LEFT: u32 = 3_000;

/// Executes `block`, which the policy would run on the parallel engine with `threads`
/// workers, probing its first transactions first; `round_trip` is the core-to-core round trip
/// (zero when it could not be measured).
pub(crate) fn execute_probed<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
    predictions: Option<Predictions>,
    round_trip: Duration,
) -> Result<BlockOutput, ExecutionError> {
    let txs = block.transactions.len();
    let (prefix, probe) = take_probe(block, source, round_trip, block.expected_writes().0)?;
    let declined = if chained(&probe) {
        Some(FallbackReason::ChainedSlots(probe))
    } else if !pays_off(&probe, txs - probe.transactions) {
        Some(FallbackReason::CheapTransactions(probe))
    } else {
        None
    };
    let mut output = match declined {
        Some(reason) => prefix.finish_with(block, Some(reason), None)?,
        None => parallel::execute_parallel_predicted(
            block,
            source,
            threads,
            options,
            predictions,
            Some(prefix),
            None,
        )?,
    };
    output.stats.probe = Some(probe);
    Ok(output)
}

/// Executes `block`, which the policy would run on the lanes engine with `threads` lanes,
/// probing its first transactions first: only for one hot slot (`hot-100`: the lanes lose an
/// epoch to find it, then hand the rest to the sequential engine), since a lane costs about
/// what the sequential engine does per transaction.
pub(crate) fn execute_probed_lanes<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    // The probe's overlay becomes the lanes' base, which holds only what the probe and the
    // cuts keep: sized for the probe (the whole block's size would be a second table as large
    // as the lanes' together: peak heap 1.10x -> 1.59x of sequential on `raw-transfers`).
    let probed = probe_length(block.transactions.len());
    let (mut prefix, probe) = take_probe(block, source, Duration::ZERO, 4 * probed)?;
    let mut output = if chained(&probe) {
        prefix.db.reserve(block.expected_writes().0);
        prefix.finish_with(block, Some(FallbackReason::ChainedSlots(probe)), None)?
    } else {
        lanes::execute_lanes_after(block, source, threads, options, Some(prefix))?
    };
    output.stats.probe = Some(probe);
    Ok(output)
}

/// How many of a block's `txs` transactions the probe runs: a thirty-second, 8 to 64.
fn probe_length(txs: usize) -> usize {
    (txs / PROBE_SHARE).clamp(MIN_PROBE, MAX_PROBE).min(txs)
}

/// Runs the block's first [`probe_length`] transactions on the sequential engine, timed, on an
/// overlay sized for about `accounts` written accounts.
fn take_probe<'a, S: StateSource + ?Sized>(
    block: &'a Block,
    source: &'a S,
    round_trip: Duration,
    accounts: usize,
) -> Result<(Prefix<'a, S>, Probe), ExecutionError> {
    let probed = probe_length(block.transactions.len());
    let mut times = Vec::with_capacity(probed);
    let prefix = Prefix::run_sized(block, source, probed, Some(&mut times), accounts)?;
    let probe = Probe {
        transactions: probed,
        per_tx: prefix.time / u32::try_from(probed.max(1)).unwrap_or(u32::MAX),
        rest_per_tx: rest_per_tx(&block.transactions, &times),
        rewriting: prefix.db.rewriting_txs(),
        round_trip,
    };
    Ok((prefix, probe))
}

/// Whether a block of `txs` transactions that the policy would run in parallel is probed
/// first, at this `round_trip`.
pub(crate) fn probes(txs: usize, round_trip: Duration) -> bool {
    round_trip >= FAR_ROUND_TRIP || txs >= MIN_PROBED_TXS_CLOSE
}

/// Whether one hot slot chains the block: so many of the probed transactions rewrote a slot
/// that they cap the speedup below [`MIN_CHAIN_PARALLELISM`], as one sender's nonces do
/// (`hot-100`, every transaction incrementing one counter: ideal 1.00x, 0.72x-0.73x on two
/// workers; nothing static names that slot).
fn chained(probe: &Probe) -> bool {
    (probe.transactions as f64) < MIN_CHAIN_PARALLELISM * probe.rewriting as f64
}

/// What a transaction after the first `times.len()` of `transactions` (which took `times`) is
/// expected to take: the probed plain transfers' mean time (no calldata; [`TRANSFER_TIME`]
/// when none was probed) and the probed calls' ([`CALL_TIME`] when none was), weighted by how
/// many of each the rest has.
fn rest_per_tx(transactions: &[TxEnv], times: &[Duration]) -> Duration {
    let (probed, rest) = transactions.split_at(times.len().min(transactions.len()));
    let mean = |transfers: bool, otherwise: Duration| {
        let (total, count) = probed
            .iter()
            .zip(times)
            .filter(|(tx, _)| tx.data.is_empty() == transfers)
            .fold((Duration::ZERO, 0u32), |(total, count), (_, time)| (total + *time, count + 1));
        if count == 0 {
            otherwise
        } else {
            total / count
        }
    };
    let transfers = rest.iter().filter(|tx| tx.data.is_empty()).count();
    let calls = rest.len() - transfers;
    let total = mean(true, TRANSFER_TIME).as_nanos() * transfers as u128
        + mean(false, CALL_TIME).as_nanos() * calls as u128;
    let nanos = total / rest.len().max(1) as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Whether the `left` transactions after the probe should run in parallel.
fn pays_off(probe: &Probe, left: usize) -> bool {
    let left = u32::try_from(left).unwrap_or(u32::MAX);
    let per_tx = probe.rest_per_tx;
    per_tx >= MIN_TX_TIME + probe.round_trip.saturating_mul(ROUND_TRIPS_PER_TX)
        && per_tx.saturating_mul(left) >= probe.round_trip.saturating_mul(ROUND_TRIPS_LEFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(per_tx_ns: u64, round_trip_ns: u64) -> Probe {
        Probe {
            transactions: 16,
            rewriting: 0,
            per_tx: Duration::from_nanos(per_tx_ns),
            rest_per_tx: Duration::from_nanos(per_tx_ns),
            round_trip: Duration::from_nanos(round_trip_ns),
        }
    }

    #[test]
    fn cheap_transactions_or_small_blocks_stay_sequential() {
        // raw-transfers: the probe reads 2.0-2.2 us a transaction, far apart or close.
        assert!(!pays_off(&probe(2_200, 390), 47_000));
        assert!(!pays_off(&probe(2_200, 50), 47_000));
        // hot-30 (2.4 us) and erc20 (5 us): only with the cores close.
        assert!(!pays_off(&probe(2_400, 390), 25_000));
        assert!(pays_off(&probe(2_400, 50), 25_000));
        assert!(!pays_off(&probe(5_000, 390), 22_000));
        assert!(pays_off(&probe(5_000, 50), 22_000));
        // uniswap: 44 us.
        assert!(pays_off(&probe(44_000, 390), 6_600));
        // A mainnet block of 13.6 us transactions, 180 left: 2.4 ms.
        assert!(pays_off(&probe(13_600, 390), 180));
        // 9 us transactions, 100 left: 0.9 ms, less than 3,000 round trips.
        assert!(!pays_off(&probe(9_000, 390), 100));
        assert!(pays_off(&probe(9_000, 390), 200));
        // The same block with the cores close.
        assert!(pays_off(&probe(9_000, 60), 100));
    }

    #[test]
    fn the_rest_is_estimated_from_its_own_mix_of_transfers_and_calls() {
        let tx = |data: &'static [u8]| TxEnv { data: data.into(), ..TxEnv::default() };
        let us = Duration::from_micros;
        // Probed: two calls (40 and 60 us) and a transfer (2 us); the rest: three transfers,
        // one call.
        let block = [tx(b"a"), tx(&[]), tx(b"b"), tx(&[]), tx(&[]), tx(b"c"), tx(&[])];
        let times = [us(40), us(2), us(60)];
        assert_eq!(rest_per_tx(&block, &times), (us(2) * 3 + us(50)) / 4);
        // Nothing of a kind probed: the defaults stand in.
        let transfers = [tx(&[]), tx(b"a"), tx(&[])];
        assert_eq!(rest_per_tx(&transfers, &[us(3)]), (us(3) + CALL_TIME) / 2);
        let calls = [tx(b"a"), tx(&[])];
        assert_eq!(rest_per_tx(&calls, &[us(30)]), TRANSFER_TIME);
    }

    #[test]
    fn a_block_chained_through_one_slot_stays_sequential() {
        let hot = |rewriting| chained(&Probe { rewriting, ..probe(3_000, 50) });
        // 16 probed: hot-100 rewrites in 15, hot-30 in about 5.
        assert!(hot(15) && hot(12));
        assert!(!hot(5) && !hot(11));
    }

    #[test]
    fn mainnet_sized_blocks_are_probed_only_when_the_cores_are_far_apart() {
        let (close, far) = (Duration::from_nanos(50), Duration::from_nanos(390));
        assert!(!probes(300, close) && probes(300, far));
        assert!(probes(47_000, close) && probes(47_000, far));
    }
}
