//! The parallel engine: optimistic execution on all workers, in-order validation and commit.
//!
//! [`execute_parallel`] runs one block: it sets up the shared state (`Shared`: the block, the
//! state source and the multi-version memory), wakes the workers (the calling thread is one
//! of them, the others are parked helpers kept between blocks, `helpers.rs`), lets the
//! scheduler (`scheduler.rs`) drive them, then folds the multi-version memory into the block's
//! [`StateChanges`](lanes_state::StateChanges).

pub(crate) mod filter;
pub(crate) mod finalize;
pub(crate) mod helpers;
pub(crate) mod in_order;
pub(crate) mod mv_memory;
pub(crate) mod predict;
pub(crate) mod scheduler;
pub(crate) mod tx_db;
pub(crate) mod vm;

use crate::{
    block::Block,
    error::ExecutionError,
    evm::cfg_env,
    outcome::{BlockOutput, BlockTrace, EngineKind, ExecutionStats},
    sequential::{Prefix, Tracking},
    ExecuteOptions,
};
use finalize::Finalizer;
use lanes_state::StateSource;
use mv_memory::MvMemory;
use revm::{context::CfgEnv, primitives::hardfork::SpecId};
use scheduler::{Scheduler, WorkerStats};
use std::time::Instant;
use tx_db::TxDb;

/// What every worker of one block shares.
#[derive(Debug)]
pub(crate) struct Shared<'a, S: ?Sized> {
    pub(crate) block: &'a Block,
    pub(crate) source: &'a S,
    pub(crate) mv: MvMemory,
    pub(crate) trace: bool,
    cfg: CfgEnv,
}

fn run_worker<'a, S: StateSource + ?Sized>(
    shared: &'a Shared<'a, S>,
    scheduler: &Scheduler,
    finalizer: &Finalizer,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let block = shared.block;
    if let Some(first) = block.transactions.first() {
        let mut evm = vm::build_evm(
            TxDb::new(shared),
            block.context.spec,
            shared.cfg.clone(),
            &block.context.header,
            first,
        );
        scheduler.run_worker(shared, &mut evm, &mut stats);
    }
    if scheduler.succeeded() {
        let started = Instant::now();
        finalizer.work(&shared.mv, shared.source);
        stats.finalize_time += started.elapsed();
    }
    stats
}

/// Executes `block` on `source` with `threads` workers (the calling thread included).
pub fn execute_parallel<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
) -> Result<BlockOutput, ExecutionError> {
    execute_parallel_with(block, source, threads, ExecuteOptions::default())
}

/// [`execute_parallel`] with options (a dependency-graph trace).
pub fn execute_parallel_with<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    let prefix = match options.sequential_prefix {
        Some(len) if !options.trace => Some(Prefix::run(block, source, len.get(), None)?),
        _ => None,
    };
    execute_parallel_predicted(block, source, threads, options, None, prefix, None)
}

/// [`execute_parallel_with`] with the block's predicted dependencies when the caller already
/// has them (the policy looked), the block's first transactions when the caller already
/// ran them on the sequential engine (the policy's probe, [`crate::probe`]), and the helpers
/// when the caller already woke them (the policy, before it looked).
pub(crate) fn execute_parallel_predicted<'a, S: StateSource + ?Sized, T: Tracking>(
    block: &'a Block,
    source: &'a S,
    threads: usize,
    options: ExecuteOptions,
    predictions: Option<predict::Predictions>,
    prefix: Option<Prefix<'a, S, T>>,
    lease: Option<helpers::Lease>,
) -> Result<BlockOutput, ExecutionError> {
    let threads = threads.clamp(1, block.transactions.len().max(1));
    // The helpers come up while the block is set up below (see `helpers.rs`).
    let lease = match lease {
        Some(lease) if lease.helpers() + 1 == threads => Some(lease),
        other => {
            // Woken for more workers than the block was given: released before it runs.
            drop(other);
            (threads > 1).then(|| helpers::Lease::take(threads - 1)).flatten()
        }
    };
    if let Some(lease) = &lease {
        lease.wake();
    }
    let mut stats = ExecutionStats::new(EngineKind::Parallel { threads });
    let shared = Shared {
        block,
        source,
        mv: {
            let (accounts, slots) = block.expected_writes();
            MvMemory::with_capacity(
                block.context.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON),
                accounts,
                slots,
            )
        },
        trace: options.trace,
        cfg: cfg_env(&block.context),
    };
    let predictions = predictions.unwrap_or_else(|| predict::Predictions::of(block));
    let scheduler = Scheduler::new(
        block.transactions.len(),
        threads,
        predictions,
        options.in_order_every.map(std::num::NonZeroUsize::get),
    );
    if let Some(prefix) = prefix {
        // The prefix is committed: its net writes become its last transaction's, as an
        // in-order window's do, and the commit frontier starts after it.
        stats.executions += prefix.executions;
        stats.in_order += prefix.results.len();
        stats.execute_time += prefix.time;
        if let Some(last) = prefix.results.len().checked_sub(1) {
            in_order::publish_overlay(&shared.mv, last, prefix.db);
        }
        scheduler.start_after(prefix.results, prefix.gas);
    }
    let finalizer = Finalizer::new(threads);
    let work = || run_worker(&shared, &scheduler, &finalizer);
    let workers: Vec<WorkerStats> = match lease {
        Some(lease) => lease.run(work, work),
        None if threads == 1 => vec![work()],
        // Another block holds the parked helpers: start this block's own.
        None => std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            let mut all = vec![work()];
            for helper in helpers {
                // A worker never panics: revm panics are caught per transaction.
                if let Ok(worker) = helper.join() {
                    all.push(worker);
                }
            }
            all
        }),
    };
    for worker in &workers {
        stats.executions += worker.executions;
        stats.reexecutions += worker.reexecutions;
        stats.validation_failures += worker.validation_failures;
        stats.deferred += worker.deferred;
        stats.in_order += worker.in_order;
        stats.hoisted += worker.hoisted;
        stats.execute_time += worker.execute_time;
        stats.validate_time += worker.validate_time;
        stats.finalize_time = stats.finalize_time.max(worker.finalize_time);
        stats.commit_time += worker.commit_time;
        stats.idle_time += worker.idle_time;
    }
    let (results, gas, dependencies) = scheduler.finish()?;
    // The multi-version memory is spent: release it before the changes are assembled.
    drop(shared);
    let merge = Instant::now();
    let changes = finalizer.finish()?;
    stats.finalize_time += merge.elapsed();
    let mut output = gas.output(results, changes, stats);
    output.trace = options.trace.then(|| BlockTrace { tx_times: Vec::new(), dependencies });
    Ok(output)
}
