//! # Lanes executor
//!
//! Executes the transactions of one block and returns, per transaction, its outcome or why it
//! is invalid, plus the block's state changes and statistics. Two engines sit behind one API
//! ([`execute`]):
//!
//! - [`Engine::Sequential`]: plain revm, one transaction after the other. The oracle.
//! - [`Engine::Parallel`]: optimistic concurrency in the Block-STM family. Its results are
//!   identical to the sequential engine's, bit for bit; only the statistics differ.
//! - [`Engine::Lanes`]: one lane of transactions per worker on plain revm, conflicts between
//!   lanes found after the fact and undone ([`lanes`]). For large blocks of cheap transactions.
//! - [`Engine::Auto`]: the adaptive [`policy`] picks one of the three per block.
//!
//! ## The parallel algorithm
//!
//! Workers take transactions in block order from one atomic counter and execute them
//! *optimistically* against a multi-version memory (`parallel/mv_memory.rs`): each read sees the
//! latest write of a lower transaction, or the pre-block state. Every read is recorded. Writes
//! are published under the transaction's index.
//!
//! A single commit frontier advances in block order (`parallel/scheduler.rs`). When transaction
//! `j` reaches it, everything below `j` is final, so `j`'s recorded reads can be checked against
//! the final values: if one differs, `j` is re-executed on the spot (and that incarnation is
//! final by construction). Then the block-level rules run in order: gas and blob gas left in
//! the block, the transaction's outcome, the cumulative gas. Validation compares *values*, so a
//! write that does not change a value does not cost a re-execution.
//!
//! What keeps Ethereum blocks parallel (`parallel/vm.rs`):
//! - the beneficiary's fee is *deferred*: a transaction that never loads the beneficiary
//!   records its fee as a credit that is folded in, in order, only when someone reads the
//!   beneficiary (and at the end); a transaction that does read it sees the exact value;
//! - balance credits commute: an account whose balance a transaction only increased without
//!   looking at it (no `BALANCE`, `SELFBALANCE`, outgoing value, `SELFDESTRUCT`, not the
//!   sender) is written as a credit, so many payments to one account do not conflict;
//! - storage wipes (self-destruct, re-creation) are versioned markers, so a contract destroyed
//!   and redeployed in one block runs without falling back to sequential execution;
//! - code is part of the versioned account value, so an EIP-7702 delegation written by one
//!   transaction is seen by the next.
//!
//! ## Map
//! | concept | file |
//! |---|---|
//! | input: block environment, transactions | [`block`] |
//! | output: outcomes, invalid transactions, statistics | [`outcome`] |
//! | rules both engines share | `evm.rs` |
//! | 64-bit fingerprints (the look's maps, the sequential engine's pre-block accounts) | `fingerprint.rs` |
//! | the oracle | [`sequential`] |
//! | multi-version memory | `parallel/mv_memory.rs` |
//! | per-transaction database and read sets | `parallel/tx_db.rs` |
//! | revm hooks, fee deferral, write sets | `parallel/vm.rs` |
//! | scheduler and commit, the throttle, learned chains | `parallel/scheduler.rs` |
//! | in-order windows on the sequential engine's loop | `parallel/in_order.rs` |
//! | parallel finalisation of the state changes | `parallel/finalize.rs` |
//! | the adaptive policy | [`policy`] |
//! | its timed look at the first transactions | [`probe`] |
//! | the lanes engine: rounds, epochs, conflict checks | [`lanes`] |
//! | a lane's marks and undo log | `lanes/log.rs` |
//! | which lane runs which transaction, what conflicts teach | `lanes/partition.rs` |

pub mod block;
pub mod error;
mod evm;
mod fingerprint;
pub mod lanes;
pub mod outcome;
pub mod parallel;
pub mod policy;
pub mod probe;
pub mod sequential;

pub use block::{block_env, BlobParams, Block, BlockContext, BlockHashes, MissingBlockHash};
pub use error::ExecutionError;
pub use outcome::{
    BlockOutput, BlockTrace, EngineKind, ExecutionStats, FallbackReason, InvalidTx, LaneStats,
    Probe, TxOutcome, TxResult, TxStatus,
};
pub use parallel::execute_parallel;
pub use sequential::execute_sequential;

pub use revm;

use lanes_state::StateSource;

/// Which engine executes a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Plain revm, one transaction after the other: the oracle.
    Sequential,
    /// The parallel engine.
    Parallel {
        /// Worker threads, the calling thread included (at least 1).
        threads: usize,
    },
    /// The lanes engine ([`lanes`]): one lane of transactions per thread, conflicts found and
    /// undone after the fact.
    Lanes {
        /// Lanes, one thread each, the calling thread included (at least 1).
        threads: usize,
    },
    /// Whichever of the two the adaptive [`policy`] expects to be faster for the block, with
    /// at most `threads` workers; the choice and its reason are in the statistics.
    Auto {
        /// Most worker threads, the calling thread included.
        threads: usize,
    },
}

/// Options of one execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// Record a [`BlockTrace`]: per-transaction times (sequential engine) or the dependency
    /// graph (parallel engine). Costs a little time; meant for benchmarks.
    pub trace: bool,
    /// Parallel engine, for tests: after every `K` transactions committed through speculative
    /// execution, run the next `K` in order on the sequential engine, as the throttle does
    /// when conflicts are frequent, so that small blocks exercise the hand-over both ways.
    pub in_order_every: Option<std::num::NonZeroUsize>,
    /// Parallel and lanes engines, for tests: run the first `K` transactions on the sequential
    /// engine and hand the rest over, as the adaptive policy's [`probe`] does. The parallel
    /// engine ignores it when tracing.
    pub sequential_prefix: Option<std::num::NonZeroUsize>,
    /// [`Engine::Auto`]: take this as the core-to-core round trip instead of measuring it, to
    /// reproduce a decision of the [`probe`] (and for tests).
    pub round_trip: Option<std::time::Duration>,
}

impl ExecuteOptions {
    /// Whether [`Engine::Auto`] may time a block's first transactions ([`probe`]): not when
    /// tracing (the trace needs every transaction's dependencies from the parallel engine), nor
    /// when a test forces a path.
    fn may_probe(&self) -> bool {
        !self.trace && self.in_order_every.is_none() && self.sequential_prefix.is_none()
    }
}

/// Executes `block` on the pre-block state `source` with `engine`.
pub fn execute<S: StateSource + ?Sized>(
    engine: Engine,
    block: &Block,
    source: &S,
) -> Result<BlockOutput, ExecutionError> {
    execute_with(engine, block, source, ExecuteOptions::default())
}

/// Executes `block` on the pre-block state `source` with `engine` and `options`.
pub fn execute_with<S: StateSource + ?Sized>(
    engine: Engine,
    block: &Block,
    source: &S,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    match engine {
        Engine::Sequential => sequential::execute_sequential_with(block, source, options),
        Engine::Parallel { threads } => {
            parallel::execute_parallel_with(block, source, threads, options)
        }
        Engine::Lanes { threads } => lanes::execute_lanes_with(block, source, threads, options),
        Engine::Auto { threads } => {
            // A block likely to run in parallel wakes the helpers first: their cores come up
            // (tens of microseconds on a virtual machine) while the policy looks at it.
            let early = policy::may_run_in_parallel(block, threads)
                .then(|| parallel::helpers::Lease::take(threads - 1))
                .flatten();
            if let Some(lease) = &early {
                lease.wake();
            }
            auto(block, source, threads, options, early)
        }
    }
}

/// [`Engine::Auto`]: the policy's plan for `block`, carried out; `early` holds the helpers
/// when they were woken before the policy looked.
fn auto<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    threads: usize,
    options: ExecuteOptions,
    early: Option<parallel::helpers::Lease>,
) -> Result<BlockOutput, ExecutionError> {
    match policy::plan(block, threads) {
        (policy::Decision::Parallel { threads }, predictions) => {
            let probing = options.may_probe();
            let round_trip = probing
                .then(|| {
                    options.round_trip.or_else(|| parallel::helpers::round_trip(early.as_ref()))
                })
                .flatten()
                .unwrap_or_default();
            if probing && probe::probes(block.transactions.len(), round_trip) {
                // The probe runs on this thread alone: the helpers are woken again after it.
                drop(early);
                probe::execute_probed(block, source, threads, options, predictions, round_trip)
            } else {
                parallel::execute_parallel_predicted(
                    block,
                    source,
                    threads,
                    options,
                    predictions,
                    None::<sequential::Prefix<'_, S>>,
                    early,
                )
            }
        }
        // The lanes take the helpers again (awake still); the sequential engine needs none
        // spinning.
        (policy::Decision::Lanes { threads }, _) => {
            drop(early);
            // Probed first, for one hot slot.
            if options.may_probe() {
                probe::execute_probed_lanes(block, source, threads, options)
            } else {
                lanes::execute_lanes_with(block, source, threads, options)
            }
        }
        (policy::Decision::SplitSender { threads }, _) => {
            drop(early);
            lanes::execute_lanes_with(block, source, threads, options)
        }
        (policy::Decision::Sequential(reason), _) => {
            drop(early);
            sequential::execute_sequential_because(block, source, options, Some(reason))
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}
