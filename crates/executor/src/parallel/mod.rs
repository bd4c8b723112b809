//! The parallel engine: optimistic execution on all workers, in-order validation and commit.
//!
//! [`execute_parallel`] runs one block: it sets up the shared state ([`Shared`]: the block, the
//! state source and the multi-version memory), starts the workers (the calling thread is one
//! of them), lets the [`scheduler`] drive them, then folds the multi-version memory into the
//! block's [`StateChanges`].

pub(crate) mod mv_memory;
pub(crate) mod scheduler;
pub(crate) mod tx_db;
pub(crate) mod vm;

use crate::{
    block::Block,
    error::ExecutionError,
    evm::{cfg_env, DbError},
    outcome::{BlockOutput, BlockTrace, EngineKind, ExecutionStats},
    ExecuteOptions,
};
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use mv_memory::{apply_credit, AccountWrite, MvMemory};
use revm::{context::CfgEnv, primitives::hardfork::SpecId, state::AccountInfo};
use scheduler::{Scheduler, WorkerStats};
use std::time::Instant;
use tx_db::{base_account, TxDb};

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
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let block = shared.block;
    let Some(first) = block.transactions.first() else { return stats };
    let mut evm = vm::build_evm(
        TxDb::new(shared),
        block.context.spec,
        shared.cfg.clone(),
        &block.context.header,
        first,
    );
    scheduler.run_worker(shared, &mut evm, &mut stats);
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
    let threads = threads.clamp(1, block.transactions.len().max(1));
    let mut stats = ExecutionStats::new(EngineKind::Parallel { threads });
    let shared = Shared {
        block,
        source,
        mv: MvMemory::new(block.context.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON)),
        trace: options.trace,
        cfg: cfg_env(&block.context),
    };
    let scheduler = Scheduler::new(block.transactions.len());
    let workers: Vec<WorkerStats> = std::thread::scope(|scope| {
        let helpers: Vec<_> =
            (1..threads).map(|_| scope.spawn(|| run_worker(&shared, &scheduler))).collect();
        let mut all = vec![run_worker(&shared, &scheduler)];
        for helper in helpers {
            // A worker never panics: revm panics are caught per transaction.
            if let Ok(worker) = helper.join() {
                all.push(worker);
            }
        }
        all
    });
    for worker in &workers {
        stats.executions += worker.executions;
        stats.reexecutions += worker.reexecutions;
        stats.validation_failures += worker.validation_failures;
        stats.execute_time += worker.execute_time;
        stats.validate_time += worker.validate_time;
    }
    let (results, gas, dependencies) = scheduler.finish()?;
    let finalize = Instant::now();
    let changes = build_changes(shared, source)?;
    stats.finalize_time = finalize.elapsed();
    Ok(BlockOutput {
        results,
        changes,
        gas_used: gas.gas_used,
        blob_gas_used: gas.blob_gas_used,
        stats,
        trace: options.trace.then(|| BlockTrace { tx_times: Vec::new(), dependencies }),
    })
}

/// Folds the multi-version memory of a fully committed block into its canonical changes.
fn build_changes<S: StateSource + ?Sized>(
    shared: Shared<'_, S>,
    source: &S,
) -> Result<StateChanges, ExecutionError> {
    let spurious_dragon = shared.block.context.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    let to_error = |error: DbError| match error {
        DbError::Source(source) => ExecutionError::StateAfterBlock { source },
        DbError::MissingBlockHash(_) => ExecutionError::Invariant("block hash read at finalize"),
    };
    let mut changes = StateChanges::default();
    for (address, account) in shared.mv.into_final() {
        let base = || base_account(source, address).map_err(to_error);
        let mut value: Option<Option<AccountInfo>> = None;
        for write in account.writes {
            value = Some(match write {
                AccountWrite::Absolute(v) => v,
                AccountWrite::Credit(amount) => {
                    let current = match value.take() {
                        Some(v) => v,
                        None => base()?,
                    };
                    apply_credit(current, amount, spurious_dragon)
                }
            });
        }
        let info = match value {
            Some(v) => v,
            None => base()?,
        };
        let change = AccountChange {
            info: info.as_ref().map(AccountState::from),
            code: info.and_then(|i| i.code).filter(|c| !c.is_empty()),
            storage_cleared: account.last_wipe.is_some(),
            storage: account.storage,
        };
        changes
            .insert_canonical(source, address, change)
            .map_err(|source| ExecutionError::StateAfterBlock { source })?;
    }
    Ok(changes)
}
