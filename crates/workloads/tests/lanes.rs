//! The lanes engine on blocks whose conflicts are known: how many rounds it runs, what it
//! throws away and where it hands over, besides being exact (every workload test also runs it,
//! through `common::run_all_engines`).

use std::time::Duration;

use lanes_executor::{
    execute, execute_with, BlockOutput, Engine, EngineKind, ExecuteOptions, FallbackReason,
    LaneStats,
};
use lanes_workloads::{
    beneficiary_read, erc20, hot_contention, hot_recipient, raw_transfers, transfer_chain, Workload,
};

/// Runs `workload` on `engine`, checked against the sequential engine.
fn checked(engine: Engine, workload: &Workload) -> BlockOutput {
    let sequential = execute(Engine::Sequential, &workload.block, &workload.state)
        .unwrap_or_else(|e| panic!("{}: sequential: {e}", workload.name));
    let output = execute(engine, &workload.block, &workload.state)
        .unwrap_or_else(|e| panic!("{}: {engine:?}: {e}", workload.name));
    assert!(
        output.same_result(&sequential),
        "{}: {engine:?}: {}",
        workload.name,
        output.first_difference(&sequential).unwrap_or_default()
    );
    output
}

/// Runs `workload` on the lanes engine with two lanes, checks it against the sequential
/// engine, and returns what the lanes engine reported.
fn lanes(workload: &Workload) -> (LaneStats, BlockOutput) {
    let lanes = checked(Engine::Lanes { threads: 2 }, workload);
    assert_eq!(lanes.stats.engine, EngineKind::Lanes { lanes: 2 });
    let stats = lanes.stats.lanes.expect("the lanes engine reports its rounds");
    (stats, lanes)
}

#[test]
fn independent_transactions_run_in_one_round() {
    for workload in [raw_transfers(3_000, 1), erc20(3_000, 2)] {
        let (stats, output) = lanes(&workload);
        assert_eq!(stats, LaneStats { rounds: 1, ..LaneStats::default() }, "{}", workload.name);
        assert_eq!(output.stats.executions, 3_000, "{}", workload.name);
        assert_eq!(output.stats.reexecutions, 0, "{}", workload.name);
    }
}

#[test]
fn a_conflict_is_learned_and_the_next_round_runs_the_rest() {
    // 30% of the calls increment one counter: the first two in different lanes conflict, the
    // next round runs all of them in one lane beside the rest.
    let (stats, _) = lanes(&hot_contention(3_000, 3, 0.3));
    assert_eq!(stats.rounds, 2, "{stats:?}");
    assert!(stats.discarded > 0 && stats.discarded < 300, "one short epoch lost: {stats:?}");
    assert_eq!(stats.tail, 0, "{stats:?}");
    // Payments from many senders to one recipient: once the recipient is learned every
    // transaction is in its class, and the parallel engine (commutative credits) runs the rest.
    let (stats, _) = lanes(&hot_recipient(3_000, 4));
    assert_eq!(stats.rounds, 1, "{stats:?}");
    assert!(stats.tail > 2_900 && stats.tail_parallel, "{stats:?}");
}

#[test]
fn a_block_chained_through_one_slot_goes_to_the_sequential_engine() {
    let (stats, output) = lanes(&hot_contention(3_000, 5, 1.0));
    assert_eq!(stats.rounds, 1, "{stats:?}");
    assert!(stats.tail > 2_500 && !stats.tail_parallel, "{stats:?}");
    assert_eq!(output.stats.executions, 3_000 + stats.discarded, "{stats:?}");
}

#[test]
fn reading_the_beneficiary_cuts_the_round_there() {
    // Some transactions pay or read the beneficiary: every deferred fee before such a read
    // makes it a conflict.
    let (stats, _) = lanes(&beneficiary_read(400, 6));
    assert!(stats.rounds >= 2 || stats.tail > 0, "{stats:?}");
}

/// Runs `workload` through the adaptive engine with two threads, checked against the
/// sequential engine.
fn adaptive(workload: &Workload) -> BlockOutput {
    checked(Engine::Auto { threads: 2 }, workload)
}

#[test]
fn the_adaptive_policy_runs_large_blocks_on_lanes() {
    // Probed first (64 transactions on the sequential engine), then the lanes run the rest
    // over the probe's state: one round, nothing run twice.
    for workload in [raw_transfers(3_000, 7), erc20(3_000, 11), hot_contention(3_000, 8, 0.3)] {
        let output = adaptive(&workload);
        assert_eq!(output.stats.engine, EngineKind::Lanes { lanes: 2 }, "{}", workload.name);
        let probe = output.stats.probe.expect("probed");
        assert_eq!(probe.transactions, 64, "{}", workload.name);
        let stats = output.stats.lanes.expect("the lanes engine reports its rounds");
        assert_eq!(output.stats.executions, 3_000 + stats.discarded, "{}", workload.name);
    }
    let one_round = adaptive(&raw_transfers(3_000, 9));
    assert_eq!(one_round.stats.lanes.map(|s| s.rounds), Some(1));
    // One hot slot (every call increments one counter): the probe sees it and the sequential
    // engine runs the block, instead of the lanes losing an epoch to find it.
    let chained = adaptive(&hot_contention(3_000, 10, 1.0));
    assert_eq!(chained.stats.engine, EngineKind::Sequential);
    assert!(chained.stats.lanes.is_none());
    assert!(matches!(chained.stats.fallback, Some(FallbackReason::ChainedSlots(_))));
    // A block this small goes to the parallel engine. The round trip is pinned close: with
    // the cores far apart the probe times the block first and may keep it sequential.
    let small = raw_transfers(500, 7);
    let close = ExecuteOptions { round_trip: Some(Duration::from_nanos(70)), ..Default::default() };
    let output = execute_with(Engine::Auto { threads: 2 }, &small.block, &small.state, close)
        .expect("executes");
    assert_eq!(output.stats.engine, EngineKind::Parallel { threads: 2 });
    assert!(output.stats.probe.is_none());
}

#[test]
fn one_senders_payments_are_split_into_segments() {
    // Every transaction from one sender, each to a new account: one split round, nothing run
    // twice, whatever the thread count.
    let workload = transfer_chain(3_000, 12);
    for threads in [2, 3, 4] {
        let output = checked(Engine::Lanes { threads }, &workload);
        let stats = output.stats.lanes.expect("the lanes engine reports its rounds");
        assert_eq!(
            (stats.rounds, stats.split_rounds, stats.tail),
            (1, 1, 0),
            "{threads}: {stats:?}"
        );
        assert_eq!(output.stats.executions, 3_000, "{threads}: {stats:?}");
    }
    // The adaptive policy sends it there (before: sequential, one sender's chain).
    let output = adaptive(&workload);
    assert_eq!(output.stats.engine, EngineKind::Lanes { lanes: 2 });
    assert!(output.stats.fallback.is_none() && output.stats.probe.is_none());
    assert_eq!(output.stats.lanes.map(|s| s.split_rounds), Some(1));
}
