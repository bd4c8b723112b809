//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use alloy_primitives::{Address, Log, U256};
use lanes_executor::{
    execute, execute_with, BlockOutput, Engine, ExecuteOptions, TxOutcome, TxResult, TxStatus,
};
use lanes_state::{InMemoryState, StateSource};
use lanes_workloads::Workload;
use std::num::NonZeroUsize;

/// Thread counts every workload is run with.
pub const THREADS: [usize; 4] = [1, 2, 4, 8];

/// Executes `workload` sequentially and in parallel with each of [`THREADS`], then with the
/// parallel engine's in-order windows (what its throttle runs on the sequential engine's loop)
/// forced every few transactions, so that every workload hands over between the two paths
/// many times, and with its first transactions run on the sequential engine before the
/// parallel one takes over (what the policy's timed probe does); asserts that all results
/// are the same, and returns the sequential one.
pub fn run_all_engines(workload: &Workload) -> BlockOutput {
    let sequential = execute(Engine::Sequential, &workload.block, &workload.state)
        .unwrap_or_else(|e| panic!("{}: sequential execution failed: {e}", workload.name));
    let plain = THREADS.map(|threads| (threads, None, None));
    let windows =
        [(1, 1), (2, 3), (4, 2)].map(|(threads, every)| (threads, NonZeroUsize::new(every), None));
    let half = workload.block.transactions.len() / 2;
    let prefixes =
        [(2, 1), (2, half), (4, 3)].map(|(threads, len)| (threads, None, NonZeroUsize::new(len)));
    for (threads, in_order_every, sequential_prefix) in
        plain.into_iter().chain(windows).chain(prefixes)
    {
        let options = ExecuteOptions { in_order_every, sequential_prefix, ..Default::default() };
        let run = match (in_order_every, sequential_prefix) {
            (Some(every), _) => {
                format!("parallel ({threads} threads, in-order windows every {every})")
            }
            (None, Some(len)) => format!("parallel ({threads} threads, after {len} in order)"),
            (None, None) => format!("parallel ({threads} threads)"),
        };
        let parallel =
            execute_with(Engine::Parallel { threads }, &workload.block, &workload.state, options)
                .unwrap_or_else(|e| panic!("{}: {run} failed: {e}", workload.name));
        assert!(
            parallel.same_result(&sequential),
            "{}: {run} differs from sequential: {}",
            workload.name,
            parallel.first_difference(&sequential).unwrap_or_default()
        );
        // One worker always reaches a forced window (more may commit the rest of the block
        // first: it was already executed when the window came on).
        assert!(
            in_order_every.is_none()
                || threads > 1
                || workload.block.transactions.len() < 2
                || parallel.stats.in_order > 0,
            "{}: {run}: no transaction ran in an in-order window",
            workload.name
        );
    }
    // The lanes, also after the first transactions ran in order (the policy's probe): the
    // rounds then read, and finalise against, the state those left.
    let plain = THREADS.map(|threads| (threads, None));
    let prefixes = [(2, 1), (2, half)].map(|(threads, len)| (threads, NonZeroUsize::new(len)));
    for (threads, sequential_prefix) in plain.into_iter().chain(prefixes) {
        let options = ExecuteOptions { sequential_prefix, ..Default::default() };
        let run = format!("lanes ({threads} threads, after {sequential_prefix:?} in order)");
        let lanes =
            execute_with(Engine::Lanes { threads }, &workload.block, &workload.state, options)
                .unwrap_or_else(|e| panic!("{}: {run} failed: {e}", workload.name));
        assert!(
            lanes.same_result(&sequential),
            "{}: {run} differs from sequential: {}",
            workload.name,
            lanes.first_difference(&sequential).unwrap_or_default()
        );
    }
    sequential
}

/// The outcome of valid transaction `i`, or a panic saying why it was invalid.
pub fn outcome(output: &BlockOutput, i: usize) -> &TxOutcome {
    match &output.results[i] {
        Ok(outcome) => outcome,
        Err(invalid) => panic!("transaction {i} is invalid: {invalid}"),
    }
}

/// Asserts that every transaction is valid and succeeded.
pub fn assert_all_succeeded(workload: &Workload, output: &BlockOutput) {
    for (i, result) in output.results.iter().enumerate() {
        match result {
            Ok(TxOutcome { status: TxStatus::Success(_), .. }) => {}
            other => panic!("{}: transaction {i} did not succeed: {other:?}", workload.name),
        }
    }
}

/// Logs of `result` (none when invalid).
pub fn logs(result: &TxResult) -> &[Log] {
    result.as_ref().map(|o| o.logs.as_slice()).unwrap_or_default()
}

/// The balance of `address` after the block.
pub fn balance_after(workload: &Workload, output: &BlockOutput, address: Address) -> U256 {
    match output.changes.accounts.get(&address) {
        Some(change) => change.info.map(|i| i.balance).unwrap_or_default(),
        None => balance_before(&workload.state, address),
    }
}

/// The balance of `address` before the block.
pub fn balance_before(state: &InMemoryState, address: Address) -> U256 {
    state.get(&address).map(|a| a.balance).unwrap_or_default()
}

/// The nonce of `address` after the block.
pub fn nonce_after(workload: &Workload, output: &BlockOutput, address: Address) -> u64 {
    match output.changes.accounts.get(&address) {
        Some(change) => change.info.map(|i| i.nonce).unwrap_or_default(),
        None => workload.state.get(&address).map(|a| a.nonce).unwrap_or_default(),
    }
}

/// A storage slot after the block.
pub fn storage_after(
    workload: &Workload,
    output: &BlockOutput,
    address: Address,
    slot: U256,
) -> U256 {
    match output.changes.accounts.get(&address) {
        Some(change) => match change.storage.get(&slot) {
            Some(value) => *value,
            None if change.storage_cleared || change.info.is_none() => U256::ZERO,
            None => workload.state.storage(address, slot).expect("in-memory state"),
        },
        None => workload.state.storage(address, slot).expect("in-memory state"),
    }
}

/// What the beneficiary earns from a transaction that used `gas_used`: the priority fee per
/// gas actually paid times the gas.
pub fn tip_paid(tx: &lanes_executor::revm::context::TxEnv, base_fee: u64, gas_used: u64) -> U256 {
    let base_fee = base_fee as u128;
    let per_gas = match tx.gas_priority_fee {
        Some(priority) => priority.min(tx.gas_price - base_fee),
        None => tx.gas_price - base_fee,
    };
    U256::from(per_gas) * U256::from(gas_used)
}
