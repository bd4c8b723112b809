//! The adaptive policy of [`crate::Engine::Auto`]: per block, from signals that cost next to
//! nothing, whether the parallel engine can pay off, and with how many workers.
//!
//! Parallel execution has a price per block (starting workers, the multi-version memory, the
//! final merge) and a price per transaction (recording reads, publishing writes, validation),
//! and it only gains what the block's dependency structure allows. The policy declines blocks
//! where the gain cannot cover the price:
//!
//! | signal | rule | why |
//! |---|---|---|
//! | threads | 1 → sequential | one worker cannot overlap anything |
//! | transactions | fewer than [`MIN_TRANSACTIONS`] → sequential | fixed costs dominate |
//! | gas | under [`MIN_GAS`] (sum of gas limits) → sequential | the whole block takes microseconds |
//! | senders | the longest chain of one sender's transactions caps the speedup at `txs / chain`; below [`MIN_SENDER_PARALLELISM`] → sequential | nonces make one sender's transactions a strict chain |
//!
//! Workers are capped at `txs / MIN_TRANSACTIONS_PER_WORKER` so that each has enough work.

use crate::{block::Block, outcome::FallbackReason};
use alloy_primitives::{map::HashMap, Address};

/// Blocks with fewer transactions run sequentially.
pub const MIN_TRANSACTIONS: usize = 24;
/// Blocks whose transactions' gas limits add up to less run sequentially.
pub const MIN_GAS: u64 = 1_500_000;
/// Blocks whose longest single-sender chain caps the speedup below this run sequentially.
pub const MIN_SENDER_PARALLELISM: f64 = 1.4;
/// Each worker should have at least this many transactions.
pub const MIN_TRANSACTIONS_PER_WORKER: usize = 12;

/// What the policy decided for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the parallel engine with this many workers.
    Parallel {
        /// Worker count.
        threads: usize,
    },
    /// Run the sequential engine, for this reason.
    Sequential(FallbackReason),
}

/// Decides how to run `block` with up to `threads` workers.
pub fn decide(block: &Block, threads: usize) -> Decision {
    let txs = block.transactions.len();
    if threads <= 1 {
        return Decision::Sequential(FallbackReason::OneThread);
    }
    if txs < MIN_TRANSACTIONS {
        return Decision::Sequential(FallbackReason::TooFewTransactions { txs });
    }
    let gas = block.gas_limit_sum();
    if gas < MIN_GAS {
        return Decision::Sequential(FallbackReason::TooLittleGas { gas });
    }
    let mut per_sender: HashMap<Address, usize> = HashMap::default();
    let mut longest = 0;
    for tx in &block.transactions {
        let count = per_sender.entry(tx.caller).or_default();
        *count += 1;
        longest = longest.max(*count);
    }
    if (txs as f64) < MIN_SENDER_PARALLELISM * longest as f64 {
        return Decision::Sequential(FallbackReason::SenderChain { longest, txs });
    }
    Decision::Parallel { threads: threads.min(txs / MIN_TRANSACTIONS_PER_WORKER).max(2) }
}
