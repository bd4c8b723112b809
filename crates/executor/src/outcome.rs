//! The executor's output: per-transaction outcomes, the block's state changes and statistics.

use alloy_primitives::{Address, Bytes, Log};
use lanes_state::StateChanges;
use revm::context_interface::result::{HaltReason, InvalidTransaction, SuccessReason};
use std::time::Duration;

/// How a valid transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Ran to completion (STOP, RETURN or SELFDESTRUCT).
    Success(SuccessReason),
    /// Ran into REVERT: state changes undone, gas still paid.
    Revert,
    /// Halted with an exceptional condition: all gas consumed.
    Halt(HaltReason),
}

impl TxStatus {
    /// Whether the transaction succeeded (receipt status 1).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success(_))
    }
}

/// The result of a valid transaction: what its receipt records, and more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// Success, revert or halt.
    pub status: TxStatus,
    /// Gas charged to the sender (after refunds and the EIP-7623 floor).
    pub gas_used: u64,
    /// Gas used by this and all earlier transactions of the block.
    pub cumulative_gas_used: u64,
    /// Blob gas used by this transaction (EIP-4844).
    pub blob_gas_used: u64,
    /// Logs emitted (empty unless the transaction succeeded).
    pub logs: Vec<Log>,
    /// Return data, or revert data.
    pub output: Bytes,
    /// The address of the contract a successful creation made.
    pub created_address: Option<Address>,
}

/// Why a transaction cannot be included in this block. An invalid transaction changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTx {
    /// Its gas limit is above what the block has left.
    #[error("gas limit {gas_limit} is above the {available} gas the block has left")]
    BlockGasExceeded {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Block gas limit minus the gas used by earlier transactions.
        available: u64,
    },
    /// Its blob gas is above what the block has left.
    #[error("blob gas {blob_gas} is above the {available} blob gas the block has left")]
    BlobGasExceeded {
        /// The transaction's blob gas.
        blob_gas: u64,
        /// Block blob gas limit minus the blob gas used by earlier transactions.
        available: u64,
    },
    /// The EVM rejected it: nonce, funds, fee below base fee, intrinsic gas, ...
    #[error(transparent)]
    Rejected(#[from] InvalidTransaction),
}

/// A transaction's outcome, or why it is invalid.
pub type TxResult = Result<TxOutcome, InvalidTx>;

/// Which engine ran a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Plain revm, one transaction after the other.
    Sequential,
    /// The parallel engine with this many workers (the calling thread included).
    Parallel {
        /// Worker count.
        threads: usize,
    },
    /// The lanes engine with this many lanes ([`crate::lanes`]).
    Lanes {
        /// Lane count (one worker each, the calling thread included).
        lanes: usize,
    },
}

/// How the lanes engine ([`crate::lanes`]) ran a block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Rounds of lanes: one, unless transactions in two lanes conflicted.
    pub rounds: usize,
    /// Transactions run in a lane after the round's cut, whose results were thrown away.
    pub discarded: usize,
    /// Transactions left to the tail (`tail_engine`) when the rounds stopped paying off.
    pub tail: usize,
    /// Whether the tail ran on the parallel engine (else on the sequential one).
    pub tail_parallel: bool,
    /// Rounds that split one sender's transactions into segments, one per lane.
    pub split_rounds: usize,
}

impl std::fmt::Display for LaneStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} round{}", self.rounds, if self.rounds == 1 { "" } else { "s" })?;
        if self.split_rounds > 0 {
            write!(f, ", {} split", self.split_rounds)?;
        }
        if self.discarded > 0 {
            write!(f, ", {} discarded", self.discarded)?;
        }
        if self.tail > 0 {
            let engine = if self.tail_parallel { "parallel" } else { "sequential" };
            write!(f, ", last {} txs {engine}", self.tail)?;
        }
        Ok(())
    }
}

/// Why the adaptive policy ([`crate::policy`]) ran a block sequentially.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// One worker: nothing can overlap.
    OneThread,
    /// Too few transactions for the per-block cost of workers to pay off.
    TooFewTransactions {
        /// Transactions in the block.
        txs: usize,
    },
    /// Too little gas for the per-block cost of workers to pay off.
    TooLittleGas {
        /// Sum of the transactions' gas limits.
        gas: u64,
    },
    /// One sender's chain of transactions (ordered by nonce) caps the speedup too low.
    SenderChain {
        /// Transactions of the busiest sender.
        longest: usize,
        /// Transactions in the block.
        txs: usize,
    },
    /// Bare calls (no value, no calldata) to one address are too large a share of the block:
    /// they can only run that address' fallback, one after the other.
    BareCallChain {
        /// Bare calls to the address that received the most.
        longest: usize,
        /// Transactions in the block.
        txs: usize,
    },
    /// The block's transactions are too cheap, or too few, to pay for what the parallel
    /// engine costs them at the core-to-core round trip measured: what the policy's timed
    /// probe found ([`crate::probe`]).
    CheapTransactions(Probe),
    /// Most of the transactions the policy's probe ran wrote a storage slot an earlier one
    /// had written: one hot slot chains the block ([`crate::probe`]).
    ChainedSlots(Probe),
    /// One sender's payments cap the block, and splitting them over the lanes would pay off
    /// but for the block's length: it is expected to take less than
    /// [`crate::policy::MIN_SPLIT_TIME`].
    ShortSplit {
        /// Transactions of the busiest sender.
        longest: usize,
        /// Transactions in the block.
        txs: usize,
        /// What the block is expected to take on the sequential engine.
        expected: Duration,
    },
}

/// What the adaptive policy's timed probe measured ([`crate::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The block's first transactions, run on the sequential engine and timed.
    pub transactions: usize,
    /// Their mean time.
    pub per_tx: Duration,
    /// What a transaction of the rest of the block is expected to take: the probe's plain
    /// transfers' and calls' mean times, weighted by the rest's share of each
    /// ([`crate::probe`]).
    pub rest_per_tx: Duration,
    /// How many of them wrote a storage slot an earlier one had written.
    pub rewriting: usize,
    /// The core-to-core round trip measured before (zero when not measured: the lanes
    /// engine's probe does not need it).
    pub round_trip: Duration,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "first {} txs {:.1} us each, the rest ~{:.1} us, {} rewrote a slot",
            self.transactions,
            self.per_tx.as_secs_f64() * 1e6,
            self.rest_per_tx.as_secs_f64() * 1e6,
            self.rewriting,
        )?;
        if !self.round_trip.is_zero() {
            write!(f, ", round trip {} ns", self.round_trip.as_nanos())?;
        }
        Ok(())
    }
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OneThread => write!(f, "one thread"),
            Self::TooFewTransactions { txs } => write!(f, "{txs} transactions is too few"),
            Self::TooLittleGas { gas } => write!(f, "{gas} gas is too little"),
            Self::SenderChain { longest, txs } => {
                write!(f, "one sender has {longest} of {txs} transactions")
            }
            Self::BareCallChain { longest, txs } => {
                write!(f, "{longest} of {txs} transactions are bare calls to one address")
            }
            Self::CheapTransactions(probe) => write!(f, "too cheap to share: {probe}"),
            Self::ChainedSlots(probe) => write!(f, "one hot slot: {probe}"),
            Self::ShortSplit { longest, txs, expected } => write!(
                f,
                "one sender has {longest} of {txs} transactions, too short to split (~{:.2} ms)",
                expected.as_secs_f64() * 1e3
            ),
        }
    }
}

/// What it cost to execute a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionStats {
    /// The engine that produced the result.
    pub engine: EngineKind,
    /// Transaction executions, re-executions included.
    pub executions: usize,
    /// Executions beyond the first of each transaction.
    pub reexecutions: usize,
    /// Read-set validations that failed.
    pub validation_failures: usize,
    /// Transactions set aside when taken, because the transaction they are predicted to follow
    /// had not executed yet; each ran once, after it.
    pub deferred: usize,
    /// Transactions the parallel engine's committer ran in order on the sequential engine,
    /// in windows, while validation failures were frequent (the throttle).
    pub in_order: usize,
    /// Heavy transactions the parallel engine started before the others (see
    /// `Predictions::heavy`).
    pub hoisted: usize,
    /// Set when the parallel engine fell back to sequential execution.
    pub fallback: Option<FallbackReason>,
    /// What the policy's timed probe measured, when it ran ([`crate::probe`]); when the block
    /// then ran in parallel, the probed transactions count as run in order.
    pub probe: Option<Probe>,
    /// Wall time spent executing transactions (summed over workers). For the parallel engine:
    /// the workers' time outside the commit and idle waits (speculative executions and
    /// publishing their writes); re-executions at the frontier count as commit time.
    pub execute_time: Duration,
    /// Wall time spent validating read sets (summed over workers).
    pub validate_time: Duration,
    /// Wall time spent holding the commit lock: validation, re-execution at the frontier and
    /// the in-order block rules (summed over workers).
    pub commit_time: Duration,
    /// Wall time workers waited with nothing to execute or commit (summed over workers).
    pub idle_time: Duration,
    /// Wall time spent building the state changes after the last transaction.
    pub finalize_time: Duration,
    /// How the lanes engine ran the block, when it did.
    pub lanes: Option<LaneStats>,
}

impl ExecutionStats {
    /// Empty statistics for `engine`.
    pub fn new(engine: EngineKind) -> Self {
        Self {
            engine,
            executions: 0,
            reexecutions: 0,
            validation_failures: 0,
            deferred: 0,
            in_order: 0,
            hoisted: 0,
            fallback: None,
            probe: None,
            execute_time: Duration::ZERO,
            validate_time: Duration::ZERO,
            commit_time: Duration::ZERO,
            idle_time: Duration::ZERO,
            finalize_time: Duration::ZERO,
            lanes: None,
        }
    }
}

/// What a traced execution records about each transaction, for explaining performance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockTrace {
    /// Per transaction, the time its execution took (sequential engine only; empty otherwise).
    pub tx_times: Vec<Duration>,
    /// Per transaction, the earlier transactions whose writes it read in its final execution
    /// (parallel engine only; empty otherwise): the block's dependency graph.
    pub dependencies: Vec<Vec<usize>>,
}

/// Everything a block execution produced.
#[derive(Clone, Debug)]
pub struct BlockOutput {
    /// One result per transaction, in block order.
    pub results: Vec<TxResult>,
    /// The block's state changes.
    pub changes: StateChanges,
    /// Gas used by all valid transactions.
    pub gas_used: u64,
    /// Blob gas used by all valid transactions.
    pub blob_gas_used: u64,
    /// Execution statistics (differ between engines; not part of equality).
    pub stats: ExecutionStats,
    /// Per-transaction trace, when asked for with [`crate::ExecuteOptions::trace`].
    pub trace: Option<BlockTrace>,
}

impl BlockOutput {
    /// Whether `self` and `other` are the same result (statistics aside).
    pub fn same_result(&self, other: &Self) -> bool {
        self.results == other.results
            && self.changes == other.changes
            && self.gas_used == other.gas_used
            && self.blob_gas_used == other.blob_gas_used
    }

    /// Describes the first difference from `other` (statistics aside), if any.
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        if self.results.len() != other.results.len() {
            return Some(format!("{} results vs {}", self.results.len(), other.results.len()));
        }
        for (i, (a, b)) in self.results.iter().zip(&other.results).enumerate() {
            if a != b {
                return Some(format!("transaction {i}: {a:?} vs {b:?}"));
            }
        }
        if let Some(diff) = self.changes.first_difference(&other.changes) {
            return Some(format!("state: {diff}"));
        }
        if self.gas_used != other.gas_used {
            return Some(format!("gas used {} vs {}", self.gas_used, other.gas_used));
        }
        if self.blob_gas_used != other.blob_gas_used {
            return Some(format!(
                "blob gas used {} vs {}",
                self.blob_gas_used, other.blob_gas_used
            ));
        }
        None
    }
}
