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
//! | senders | the longest chain of one sender's transactions caps the speedup at `txs / chain`; below [`MIN_CHAIN_PARALLELISM`] → sequential, unless the block has [`MIN_SPLIT_TRANSACTIONS`] or more, is expected to take [`MIN_SPLIT_TIME`] or more, and three in four of that sender's transactions are payments (no calldata) → the lanes engine, split | nonces make one sender's transactions a strict chain; payments see their sender's balance only through a check that a lower bound passes too (`lanes/split.rs`) |
//! | bare calls | the same for the bare calls (no value, no calldata) to one address | a bare call can only run the recipient's fallback: many senders doing so in one block is an airdrop handing out one shared balance, and the scheduler runs them one after the other (predicted followers) |
//!
//! (Until 2026-11-27 the last rule counted every transaction that followed an earlier one of
//! its sender or bare-call recipient, and declined blocks where they were more than half:
//! mainnet blocks 6196166 and 6137495, where they once nearly all failed validation. With
//! predicted followers waiting for each other they no longer do; forced onto the parallel
//! engine these blocks ran 1.10x-1.40x and 1.31x-1.47x with no re-execution, and their longest
//! chains, 49 of 108 and 33 of 60 bare calls to one address, allow it.)
//!
//! Workers are capped at `txs / MIN_TRANSACTIONS_PER_WORKER` so that each has enough work.
//!
//! Blocks of [`MIN_LANES_TRANSACTIONS`] or more that pass these rules run on the lanes engine
//! ([`crate::lanes`]) after the probe ([`crate::probe`]) has run their first 64 transactions and
//! found no hot slot chaining them; the lanes' cost per transaction is close to the sequential
//! engine's: on a
//! gigagas block of cheap transactions the parallel engine's bookkeeping costs as much as the
//! transactions themselves. (Mainnet blocks, a few hundred transactions of which several meet
//! at one pool or token, conflict too often for lanes: they stay on the parallel engine.)
//!
//! The look at senders and recipients is one pass (`parallel::predict`); when the block runs in
//! parallel, the scheduler reuses it to hold back predicted followers. Blocks for the lanes
//! engine only need the two chain rules, which a majority vote decides without its tables.

use crate::{
    block::Block,
    outcome::FallbackReason,
    parallel::predict::Predictions,
    probe::{CALL_TIME, TRANSFER_TIME},
};
use alloy_primitives::{Address, TxKind};
use revm::context::TxEnv;
use std::time::Duration;

/// Blocks with fewer transactions run sequentially.
pub const MIN_TRANSACTIONS: usize = 24;
/// Blocks whose transactions' gas limits add up to less run sequentially.
pub const MIN_GAS: u64 = 1_500_000;
/// Blocks whose longest chain (one sender's transactions, or the bare calls to one address)
/// caps the speedup below this run sequentially.
pub const MIN_CHAIN_PARALLELISM: f64 = 1.4;
/// Each worker should have at least this many transactions.
pub const MIN_TRANSACTIONS_PER_WORKER: usize = 12;
/// Blocks one sender's payments cap run on the lanes engine, which splits them, from this many
/// transactions: below, a split's fixed cost (a helper woken, three overlays' changes built and
/// merged: ~80 us) is too close to its gain. Mainnet payouts of 222 and 380 transactions (0.33
/// and 0.47 ms sequential) ran 0.81x-1.35x split over four runs of one hour; of 579 to 687
/// (0.9-2.2 ms), 1.09x-1.30x.
pub const MIN_SPLIT_TRANSACTIONS: usize = 512;
/// ...and only when they are expected to take at least this long (plain transfers at
/// [`TRANSFER_TIME`], calls at [`CALL_TIME`]): a split round costs about a third of a
/// millisecond whatever the block's length (mainnet 11814555, 579 payments, 0.88 ms
/// sequential: after four segments of 0.21-0.36 ms, two per worker, the faster worker waited
/// 0.05-0.24 ms, the segments' checks took 0.06-0.13 ms and the overlays' merge
/// 0.10-0.15 ms; BENCHMARKS.md, hot spot 45), so 11814555 ran
/// 0.78x-1.23x split over eight runs of a day, 12300570 (1.3 ms) 1.09x-1.41x, 12520364
/// (2.2 ms) 1.17x-1.22x. Timing the block's first transactions instead (the probe) cost
/// 12300570 more than the split gained: its first 21 transactions are its dearest (0.35 ms).
pub const MIN_SPLIT_TIME: Duration = Duration::from_millis(1);
/// Blocks the rules above would run in parallel, with at least this many transactions, run
/// on the lanes engine ([`crate::lanes`]) instead of the parallel one.
pub const MIN_LANES_TRANSACTIONS: usize = 2048;

/// What the policy decided for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the parallel engine with this many workers.
    Parallel {
        /// Worker count.
        threads: usize,
    },
    /// Run the lanes engine with this many lanes.
    Lanes {
        /// Lane count.
        threads: usize,
    },
    /// Run the lanes engine with this many lanes, which split the transactions of the sender
    /// that has most of the block into segments (`lanes/split.rs`): payments from one
    /// account, which the other engines run one after the other.
    SplitSender {
        /// Lane count.
        threads: usize,
    },
    /// Run the sequential engine, for this reason.
    Sequential(FallbackReason),
}

/// Decides how to run `block` with up to `threads` workers.
pub fn decide(block: &Block, threads: usize) -> Decision {
    plan(block, threads).0
}

/// [`decide`], with the look at the transactions it took when it got that far: the parallel
/// engine schedules with it.
pub(crate) fn plan(block: &Block, threads: usize) -> (Decision, Option<Predictions>) {
    if let Some(reason) = too_small(block, threads) {
        return (Decision::Sequential(reason), None);
    }
    let txs = block.transactions.len();
    // The lanes engine needs no predictions: a large block is only checked for a chain that
    // caps it, without the tables (`Predictions::of` took 1.3-4 ms of one core on the gigagas
    // workloads, before any lane started; the vote takes 0.5-1 ms).
    let predictions = (txs < MIN_LANES_TRANSACTIONS).then(|| Predictions::of(block));
    let (senders, bare_calls) = match &predictions {
        Some(predictions) => (predictions.longest_sender_chain(), predictions.longest_bare_chain()),
        None => majority_chains(block),
    };
    let threads = threads.min(txs / MIN_TRANSACTIONS_PER_WORKER).max(2);
    if (txs as f64) < MIN_CHAIN_PARALLELISM * senders as f64 {
        if txs >= MIN_SPLIT_TRANSACTIONS && splits(&block.transactions) {
            let expected = expected_time(&block.transactions);
            if expected >= MIN_SPLIT_TIME {
                return (Decision::SplitSender { threads }, None);
            }
            let reason = FallbackReason::ShortSplit { longest: senders, txs, expected };
            return (Decision::Sequential(reason), None);
        }
        let reason = FallbackReason::SenderChain { longest: senders, txs };
        return (Decision::Sequential(reason), None);
    }
    if (txs as f64) < MIN_CHAIN_PARALLELISM * bare_calls as f64 {
        let reason = FallbackReason::BareCallChain { longest: bare_calls, txs };
        return (Decision::Sequential(reason), None);
    }
    match predictions {
        Some(predictions) => (Decision::Parallel { threads }, Some(predictions)),
        None => (Decision::Lanes { threads }, None),
    }
}

/// The policy's first and cheapest checks: why `block` runs sequentially at `threads` whatever
/// its transactions do (one thread, too few transactions, too little gas), or `None`.
fn too_small(block: &Block, threads: usize) -> Option<FallbackReason> {
    let txs = block.transactions.len();
    if threads <= 1 {
        return Some(FallbackReason::OneThread);
    }
    if txs < MIN_TRANSACTIONS {
        return Some(FallbackReason::TooFewTransactions { txs });
    }
    let gas = block.gas_limit_sum();
    (gas < MIN_GAS).then_some(FallbackReason::TooLittleGas { gas })
}

/// Whether `block` will probably run on the parallel engine at `threads`: it passes the first
/// checks of [`plan`], and no sender has so many of its transactions that they chain it (a
/// majority vote, far cheaper than the look at the block). The caller wakes the helpers
/// before the policy looks further: a woken helper that turns out not to be needed keeps the
/// other core busy for tens of microseconds, which slows a short block's sequential run
/// (mainnet 5891667, 0.37 ms, one sender's 379 of 380 transactions, read 0.90x).
pub(crate) fn may_run_in_parallel(block: &Block, threads: usize) -> bool {
    let txs = block.transactions.len();
    too_small(block, threads).is_none()
        && majority_sender(&block.transactions)
            .is_none_or(|(_, count)| txs as f64 >= MIN_CHAIN_PARALLELISM * count as f64)
}

/// The transactions of the block's busiest sender, and the bare calls to its busiest bare-call
/// recipient: exact where more than half of the block, otherwise at most half. The chain rules
/// only act on chains of more than `1 / MIN_CHAIN_PARALLELISM` (71%) of the block, so this
/// decides as the exact counts would, without a table: Boyer and Moore's majority vote, a
/// candidate of each from one pass, counted in a second.
fn majority_chains(block: &Block) -> (usize, usize) {
    let bare_call = |tx: &TxEnv| match tx.kind {
        TxKind::Call(to) if tx.data.is_empty() && tx.value.is_zero() => Some(to),
        _ => None,
    };
    let mut senders = Vote::default();
    let mut bare_calls = Vote::default();
    for tx in &block.transactions {
        senders.cast(Some(tx.caller));
        bare_calls.cast(bare_call(tx));
    }
    let (mut sender_count, mut bare_count) = (0, 0);
    for tx in &block.transactions {
        sender_count += usize::from(senders.candidate == Some(tx.caller));
        bare_count += usize::from(bare_calls.candidate.is_some_and(|to| bare_call(tx) == Some(to)));
    }
    (sender_count, bare_count)
}

/// What `txs` are expected to take on the sequential engine, by kind: plain transfers (no
/// calldata) at [`TRANSFER_TIME`], the others at [`CALL_TIME`].
fn expected_time(txs: &[TxEnv]) -> Duration {
    let transfers = txs.iter().filter(|tx| tx.data.is_empty()).count();
    let calls = txs.len() - transfers;
    TRANSFER_TIME.saturating_mul(u32::try_from(transfers).unwrap_or(u32::MAX))
        + CALL_TIME.saturating_mul(u32::try_from(calls).unwrap_or(u32::MAX))
}

/// The sender of more than half of `txs`, if one is, with its transactions.
pub(crate) fn majority_sender(txs: &[TxEnv]) -> Option<(Address, usize)> {
    let mut vote = Vote::default();
    for tx in txs {
        vote.cast(Some(tx.caller));
    }
    let sender = vote.candidate?;
    let count = txs.iter().filter(|tx| tx.caller == sender).count();
    (2 * count > txs.len()).then_some((sender, count))
}

/// Whether the lanes engine's split pays off on a block whose busiest sender caps it: at
/// least three in four of that sender's transactions are calls without calldata or EIP-7702
/// authorizations (payments, which run no code when the recipient has none), so that the
/// lanes rarely wait for each other's value of the sender.
fn splits(txs: &[TxEnv]) -> bool {
    let Some((sender, count)) = majority_sender(txs) else { return false };
    let payments = txs
        .iter()
        .filter(|tx| {
            tx.caller == sender
                && tx.kind.is_call()
                && tx.data.is_empty()
                && tx.authorization_list.is_empty()
        })
        .count();
    4 * payments >= 3 * count
}

/// One majority vote: the value that more than half of the values cast share, if one does,
/// ends as the candidate.
#[derive(Default)]
struct Vote {
    candidate: Option<Address>,
    votes: usize,
}

impl Vote {
    fn cast(&mut self, value: Option<Address>) {
        if self.votes == 0 {
            self.candidate = value;
            self.votes = 1;
        } else if value == self.candidate {
            self.votes += 1;
        } else {
            self.votes -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use alloy_primitives::{Address, Bytes, TxKind, U256};
    use revm::{context::TxEnv, primitives::hardfork::SpecId};

    fn tx(from: u64, to: u64, value: u64, data: &[u8]) -> TxEnv {
        TxEnv {
            caller: Address::left_padding_from(&from.to_be_bytes()),
            kind: TxKind::Call(Address::left_padding_from(&to.to_be_bytes())),
            value: U256::from(value),
            data: Bytes::copy_from_slice(data),
            gas_limit: 100_000,
            ..Default::default()
        }
    }

    fn block(transactions: Vec<TxEnv>) -> Block {
        Block { context: BlockContext::new(SpecId::CANCUN, Default::default()), transactions }
    }

    #[test]
    fn large_blocks_run_on_lanes() {
        let txs: Vec<_> = (0..3_000).map(|i| tx(i, 100_000 + i, 1, &[])).collect();
        assert_eq!(decide(&block(txs.clone()), 2), Decision::Lanes { threads: 2 });
        // Unless one sender's chain caps them (9 in 10 from one sender, and the first): its
        // payments are split, its calls run sequentially.
        let busy = |data: &'static [u8]| -> Vec<TxEnv> {
            (0..3_000).map(|i| tx(if i % 10 == 0 { i } else { 0 }, 100_000 + i, 1, data)).collect()
        };
        assert_eq!(decide(&block(busy(&[])), 2), Decision::SplitSender { threads: 2 });
        assert_eq!(
            decide(&block(busy(&[1, 2, 3, 4])), 2),
            Decision::Sequential(FallbackReason::SenderChain { longest: 2_701, txs: 3_000 })
        );
        // Or the bare calls to one address (three in four), with payments in between.
        let txs: Vec<_> = (0..3_000)
            .map(|i| if i % 4 == 0 { tx(i, 1_000 + i, 1, &[]) } else { tx(i, 7, 0, &[]) })
            .collect();
        assert_eq!(
            decide(&block(txs), 2),
            Decision::Sequential(FallbackReason::BareCallChain { longest: 2_250, txs: 3_000 })
        );
    }

    #[test]
    fn the_majority_vote_counts_exactly_what_is_over_half() {
        // Over half: the exact counts, wherever the majority's transactions sit.
        for (share, shift) in [(0.51, 0), (0.75, 1_000), (1.0, 0)] {
            let n = 2_000u64;
            let ones = (share * n as f64) as u64;
            let txs: Vec<_> = (0..n)
                .map(|i| {
                    let from = if (i + shift) % n < ones { 0 } else { 1 + i };
                    tx(from, 100_000 + i, 1, &[])
                })
                .collect();
            let block = block(txs);
            let exact = Predictions::of(&block);
            assert_eq!(majority_chains(&block), (exact.longest_sender_chain(), 0), "{share}");
        }
        // At most half: any count no larger.
        let txs: Vec<_> = (0..2_000).map(|i| tx(i % 2, 100_000 + i, 1, &[])).collect();
        assert!(majority_chains(&block(txs)).0 <= 1_000);
    }

    #[test]
    fn independent_calls_run_in_parallel_with_workers_capped_by_size() {
        // 100 senders each calling a token with their own arguments.
        let txs = (0..100).map(|i| tx(i, 1_000, 0, &(i as u32).to_be_bytes())).collect();
        assert_eq!(decide(&block(txs), 8), Decision::Parallel { threads: 8 });
        // The same calldata from every sender (a function keyed by the caller) is not a chain.
        let txs: Vec<_> = (0..100).map(|i| tx(i, 1_000, 0, &[0xa9, 0x05, 0x9c, 0xbb])).collect();
        assert_eq!(Predictions::of(&block(txs.clone())).longest_bare_chain(), 0);
        assert_eq!(decide(&block(txs), 2), Decision::Parallel { threads: 2 });
        let txs = (0..30).map(|i| tx(i, 1_000, 0, &(i as u32).to_be_bytes())).collect();
        assert_eq!(decide(&block(txs), 8), Decision::Parallel { threads: 2 }, "30 / 12 workers");
    }

    #[test]
    fn small_or_single_threaded_blocks_run_sequentially() {
        let txs: Vec<_> = (0..100).map(|i| tx(i, 1_000 + i, 1, &[])).collect();
        assert_eq!(decide(&block(txs.clone()), 1), Decision::Sequential(FallbackReason::OneThread));
        assert_eq!(
            decide(&block(txs[..10].to_vec()), 2),
            Decision::Sequential(FallbackReason::TooFewTransactions { txs: 10 })
        );
    }

    #[test]
    fn one_busy_senders_payments_are_split_and_its_calls_run_sequentially() {
        // 800 payments from one sender (an exchange paying out), 200 from others.
        let mut txs: Vec<_> = (0..800).map(|i| tx(7, 1_000 + i, 1, &[])).collect();
        txs.extend((0..200).map(|i| tx(100 + i, 1_000, 1, &[])));
        assert_eq!(decide(&block(txs.clone()), 2), Decision::SplitSender { threads: 2 });
        assert_eq!(decide(&block(txs.clone()), 16), Decision::SplitSender { threads: 16 });
        // 600 of them alone, ~0.9 ms: a split's fixed cost would eat its gain.
        assert_eq!(
            decide(&block(txs[..600].to_vec()), 2),
            Decision::Sequential(FallbackReason::ShortSplit {
                longest: 600,
                txs: 600,
                expected: TRANSFER_TIME * 600
            })
        );
        // A tenth of that is too small to split.
        let small: Vec<_> = txs.iter().step_by(10).cloned().collect();
        assert_eq!(
            decide(&block(small), 2),
            Decision::Sequential(FallbackReason::SenderChain { longest: 80, txs: 100 })
        );
        // Calls with calldata run code that may read the sender: a chain.
        for tx in &mut txs[..300] {
            tx.data = Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb]);
        }
        assert_eq!(
            decide(&block(txs), 2),
            Decision::Sequential(FallbackReason::SenderChain { longest: 800, txs: 1_000 })
        );
    }

    #[test]
    fn bare_calls_to_one_contract_from_many_senders_run_sequentially() {
        // An airdrop claimed by calling its contract with no calldata, from 80 senders.
        let mut txs: Vec<_> = (0..80).map(|i| tx(i, 1_000, 0, &[])).collect();
        txs.extend((0..20).map(|i| tx(100 + i, 2_000 + i, 1, &[])));
        assert_eq!(
            decide(&block(txs), 2),
            Decision::Sequential(FallbackReason::BareCallChain { longest: 80, txs: 100 })
        );
    }

    #[test]
    fn bare_calls_spread_over_several_contracts_run_in_parallel() {
        // Mainnet block 6196166: 83 of 108 transactions are bare calls, at most 49 to one
        // address; the rest of the block runs beside them.
        let mut txs: Vec<_> = (0..49).map(|i| tx(i, 1_000, 0, &[])).collect();
        txs.extend((0..34).map(|i| tx(100 + i, 2_000 + i % 5, 0, &[])));
        txs.extend((0..25).map(|i| tx(200 + i, 3_000 + i, 1, &[])));
        assert_eq!(decide(&block(txs), 2), Decision::Parallel { threads: 2 });
    }

    #[test]
    fn payments_to_one_recipient_do_not_count_as_followers() {
        // Deposits to one exchange address: credits, which the engine does not conflict on.
        let txs: Vec<_> = (0..100).map(|i| tx(i, 1_000, 5, &[])).collect();
        assert_eq!(Predictions::of(&block(txs.clone())).longest_bare_chain(), 0);
        assert_eq!(decide(&block(txs), 2), Decision::Parallel { threads: 2 });
    }
}
