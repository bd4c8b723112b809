//! Randomized differential test: mixed blocks ([`lanes_workloads::mixed`]) with deliberate
//! conflicts and invalid transactions, each executed by the sequential engine, by the parallel
//! engine and by the lanes engine with a thread count drawn from the block's seed; the results
//! must be equal.
//!
//! A second test does the same on payout blocks ([`lanes_workloads::payouts`]: one account
//! sends most transactions), which the lanes engine splits into segments.
//!
//! `LANES_DIFF_SEED` overrides the base seed (decimal or 0x-hex) and `LANES_DIFF_BLOCKS` the
//! number of blocks (`LANES_DIFF_PAYOUT_BLOCKS` of the second test); block `k` uses seed `base + k`. Every block is checked; the failure lists
//! each block that differed with the seed that rebuilds it: `LANES_DIFF_SEED=<seed>
//! LANES_DIFF_BLOCKS=1 cargo test --release -p lanes-workloads --test differential` (the parallel
//! engine's interleavings vary from run to run, so a race may need several runs to show again).

use lanes_executor::{
    execute, execute_with, revm::primitives::hardfork::SpecId, Engine, ExecuteOptions, TxStatus,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::{collections::BTreeMap, num::NonZeroUsize, panic::AssertUnwindSafe};

const DEFAULT_SEED: u64 = 0x1a4e_5d1f;
const DEFAULT_BLOCKS: u64 = 2_000;
const DEFAULT_PAYOUT_BLOCKS: u64 = 600;

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text:?} is not a number: {e}")))
}

/// Size and thread count of the block of `seed`: mostly 5 to 150 transactions, sometimes 1 to 4.
fn block_shape(seed: u64) -> (usize, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd1ff_5eed);
    let size =
        if rng.random_bool(0.1) { rng.random_range(1..=4) } else { rng.random_range(5..=150) };
    (size, rng.random_range(1..=8))
}

/// Counts of what the blocks contained, to check that the generator exercises everything.
#[derive(Debug, Default)]
struct Tally {
    outcomes: BTreeMap<&'static str, usize>,
    specs: BTreeMap<String, usize>,
    /// Blocks the lanes engine ran in one round, in several, and with a tail on another engine.
    lanes: BTreeMap<&'static str, usize>,
    /// Blocks in which the parallel engine started a heavy transaction before the others, and
    /// those of them in which one ran again (it read what an earlier one wrote).
    hoisted: usize,
    hoisted_reexecuted: usize,
}

/// Executes the block `generate` makes from `seed` with every engine; returns why they
/// disagree, if they do.
fn check_block(
    seed: u64,
    generate: fn(usize, u64) -> lanes_workloads::Workload,
    tally: &mut Tally,
) -> Result<(), String> {
    let (size, threads) = block_shape(seed);
    let workload = generate(size, seed);
    // A third of the blocks also force the in-order windows of the parallel engine's throttle,
    // every 1-4 transactions (invalid transactions and block gas included).
    let in_order_every =
        NonZeroUsize::new(if seed.is_multiple_of(3) { 1 + (seed / 3 % 4) as usize } else { 0 });
    // Another third run their first 1-8 transactions on the sequential engine first, as the
    // policy's probe does (both engines: the lanes then start over that state).
    let sequential_prefix =
        NonZeroUsize::new(if seed % 3 == 1 { 1 + (seed / 3 % 8) as usize } else { 0 });
    let what = format!(
        "seed {seed} ({}, {threads} threads, in-order windows every {in_order_every:?}, \
         {sequential_prefix:?} first in order)",
        workload.name
    );
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let sequential = execute(Engine::Sequential, &workload.block, &workload.state);
        let options = ExecuteOptions { in_order_every, sequential_prefix, ..Default::default() };
        let parallel =
            execute_with(Engine::Parallel { threads }, &workload.block, &workload.state, options);
        let lanes =
            execute_with(Engine::Lanes { threads }, &workload.block, &workload.state, options);
        (sequential, parallel, lanes)
    }));
    let Ok((sequential, parallel, lanes)) = run else {
        return Err(format!("{what}: an engine panicked"));
    };
    let sequential = sequential.map_err(|e| format!("{what}: sequential execution failed: {e}"))?;
    let parallel = parallel.map_err(|e| format!("{what}: parallel execution failed: {e}"))?;
    let lanes = lanes.map_err(|e| format!("{what}: lanes execution failed: {e}"))?;
    if let Some(difference) = lanes
        .first_difference(&sequential)
        .or_else(|| (!lanes.same_result(&sequential)).then(|| "lanes: results differ".to_string()))
    {
        return Err(format!("{what}: lanes differ from sequential: {difference}"));
    }
    if let Some(stats) = lanes.stats.lanes {
        let kind = match (stats.rounds, stats.tail) {
            (_, tail) if tail > 0 => "tail",
            (1, _) => "one round",
            _ => "several rounds",
        };
        *tally.lanes.entry(kind).or_default() += 1;
        if stats.split_rounds > 0 {
            let kind = if stats.rounds > 1 { "split, several rounds" } else { "split, one round" };
            *tally.lanes.entry(kind).or_default() += 1;
        }
    }
    for result in &sequential.results {
        let kind = match result {
            Ok(o) => match o.status {
                TxStatus::Success(_) => "success",
                TxStatus::Revert => "revert",
                TxStatus::Halt(_) => "halt",
            },
            Err(lanes_executor::InvalidTx::BlockGasExceeded { .. }) => "invalid: block gas",
            Err(_) => "invalid: rejected",
        };
        *tally.outcomes.entry(kind).or_default() += 1;
    }
    *tally.specs.entry(format!("{:?}", workload.block.context.spec)).or_default() += 1;
    if parallel.stats.hoisted > 0 {
        tally.hoisted += 1;
        tally.hoisted_reexecuted += usize::from(parallel.stats.reexecutions > 0);
    }
    match parallel.first_difference(&sequential) {
        None if parallel.same_result(&sequential) => Ok(()),
        difference => Err(format!(
            "{what}: parallel differs from sequential: {}",
            difference.unwrap_or_default()
        )),
    }
}

/// Checks the `blocks` blocks `generate` makes from seeds `base`, `base + 1`, ...: what they
/// held, and why each that failed did.
fn check_blocks(
    generate: fn(usize, u64) -> lanes_workloads::Workload,
    base: u64,
    blocks: u64,
) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for k in 0..blocks {
        let seed = base.wrapping_add(k);
        if let Err(failure) = check_block(seed, generate, &mut tally) {
            eprintln!("MISMATCH {failure}");
            failures.push(failure);
        }
    }
    (tally, failures)
}

#[test]
fn parallel_matches_sequential_on_mixed_blocks() {
    let base = env_u64("LANES_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let blocks = env_u64("LANES_DIFF_BLOCKS").unwrap_or(DEFAULT_BLOCKS);
    let (tally, failures) = check_blocks(lanes_workloads::mixed, base, blocks);
    assert!(
        failures.is_empty(),
        "parallel != sequential on {} of {blocks} blocks (the parallel engine's timing varies, so a \
         seed may need several runs to fail again); reproduce one with \
         LANES_DIFF_SEED=<seed> LANES_DIFF_BLOCKS=1 cargo test --release -p lanes-workloads --test \
         differential\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{blocks} blocks from seed {base}: {tally:?}");
    if blocks >= 100 {
        for kind in ["success", "revert", "halt", "invalid: block gas", "invalid: rejected"] {
            assert!(
                tally.outcomes.get(kind).copied().unwrap_or(0) > 0,
                "no {kind} outcome: {tally:?}"
            );
        }
        for kind in ["one round", "several rounds", "tail"] {
            assert!(tally.lanes.get(kind).copied().unwrap_or(0) > 0, "no lanes {kind}: {tally:?}");
        }
        assert!(
            tally.hoisted_reexecuted > 0,
            "no heavy transaction started first ran again: {tally:?}"
        );
        for spec in [SpecId::SHANGHAI, SpecId::CANCUN, SpecId::PRAGUE] {
            assert!(tally.specs.contains_key(&format!("{spec:?}")), "no {spec:?} block: {tally:?}");
        }
    }
}

#[test]
fn lanes_match_sequential_on_payout_blocks() {
    // Blocks one account sends most of: the lanes engine splits them (`lanes/split.rs`).
    let base = env_u64("LANES_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let blocks = env_u64("LANES_DIFF_PAYOUT_BLOCKS").unwrap_or(DEFAULT_PAYOUT_BLOCKS);
    let (tally, failures) = check_blocks(lanes_workloads::payouts, base, blocks);
    assert!(
        failures.is_empty(),
        "an engine != sequential on {} of {blocks} payout blocks; reproduce one with \
         LANES_DIFF_SEED=<seed> LANES_DIFF_PAYOUT_BLOCKS=1 cargo test --release -p \
         lanes-workloads --test differential lanes_match\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{blocks} payout blocks from seed {base}: {tally:?}");
    if blocks >= 100 {
        for kind in ["success", "revert", "invalid: rejected"] {
            assert!(
                tally.outcomes.get(kind).copied().unwrap_or(0) > 0,
                "no {kind} outcome: {tally:?}"
            );
        }
        for kind in ["split, one round", "split, several rounds"] {
            assert!(tally.lanes.get(kind).copied().unwrap_or(0) > 0, "no lanes {kind}: {tally:?}");
        }
    }
}
