//! A cheap look at a block's transactions, before any of them runs, that predicts which ones
//! will conflict: the scheduler then lets a predicted follower wait for the transaction it
//! follows instead of executing it early on values that are about to change.
//!
//! A transaction *follows* the nearest earlier transaction of the block with which it shares a
//! key:
//!
//! | key | shared by | why they conflict |
//! |---|---|---|
//! | the sender | two transactions of one sender | the nonce (and the balance paying for gas) |
//! | an ERC-20 balance `(token, holder)` | `transfer(to, _)` and `transferFrom(from, to, _)` calls moving the holder's tokens | both read and write the holder's balance slot (deposits swept to one exchange address) |
//! | a bare call's recipient | calls without value or calldata to one address | they can only run its fallback: an airdrop handing out one shared balance |
//!
//! A wrong prediction costs no exactness (validation decides), only parallelism: the follower
//! runs after the transaction it follows instead of beside it. Plain transfers and calls with
//! distinct keys are never followers.
//!
//! Some conflicts no static signal names: every call of one function of one contract may
//! read-modify-write the same slot (a counter, a pool's reserves), or none may (an ERC-20
//! `transfer` between distinct holders). So calls are also grouped by contract and selector
//! (`previous_call`, `next_call`), and the scheduler chains a group only once its calls keep
//! failing validation at run time (see `Scheduler::learn`).

use crate::{
    block::Block,
    fingerprint::{fingerprint, Fingerprinted},
};
use alloy_primitives::{Address, TxKind};
use std::{collections::HashMap, hash::BuildHasherDefault};

/// No transaction: the sentinel of the index arrays.
const NONE: u32 = u32::MAX;

/// `transfer(address,uint256)`.
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `transferFrom(address,address,uint256)`.
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// The predicted dependencies of a block's transactions, as a forest: each transaction's
/// predecessor, and for each transaction the list of those that follow it.
#[derive(Debug, Default)]
pub(crate) struct Predictions {
    /// `followed[j]`: the transaction `j` follows, or [`NONE`].
    followed: Vec<u32>,
    /// The first transaction following `i`, or [`NONE`]; the others are chained by `next_follower`.
    first_follower: Vec<u32>,
    /// The next transaction following the same transaction as `j`, or [`NONE`].
    next_follower: Vec<u32>,
    /// `call_group[j]`: the first transaction calling the same contract and selector as `j`
    /// (the group's name), or [`NONE`] when `j` is no such call.
    call_group: Vec<u32>,
    /// The previous and the next transaction of `j`'s call group, or [`NONE`].
    previous_call: Vec<u32>,
    next_call: Vec<u32>,
    /// Transactions of the busiest sender.
    longest_sender_chain: usize,
    /// Bare calls (no value, no calldata) to the address that received the most.
    longest_bare_chain: usize,
    /// The transactions that may take a large share of the block, in block order (see
    /// [`Self::heavy`]).
    heavy: Vec<u32>,
}

/// The ERC-20 holder address in calldata argument `n` (0-based), if the word is an address.
fn address_argument(data: &[u8], n: usize) -> Option<Address> {
    let word = data.get(4 + 32 * n..4 + 32 * (n + 1))?;
    word[..12].iter().all(|b| *b == 0).then(|| Address::from_slice(&word[12..]))
}

/// The keys of the look's maps are 64-bit fingerprints of what they name (a sender, a
/// `(token, holder)` balance, a `(contract, selector)` group) rather than the addresses
/// themselves: 16-byte entries instead of 28 to 48 (the balance map of a gigagas `erc20` block
/// then fits the core's cache), and no hashing of 40-byte keys. Two keys sharing a fingerprint
/// (one chance in 2^64 per pair, or a crafted pair) only make a wrong prediction, which costs
/// parallelism, never exactness.
type Fingerprints<V> = HashMap<u64, V, BuildHasherDefault<Fingerprinted>>;

/// Appends transaction `j` to the chain named `key` (per chain: its last transaction and its
/// length), keeping `longest` the length of the longest. Returns the chain's previous
/// transaction, or [`NONE`].
fn extend_chain(
    chains: &mut Fingerprints<(u32, u32)>,
    key: u64,
    j: u32,
    longest: &mut usize,
) -> u32 {
    let (last, length) = chains.entry(key).or_insert((NONE, 0));
    *length += 1;
    *longest = (*longest).max(*length as usize);
    std::mem::replace(last, j)
}

impl Predictions {
    /// Looks at every transaction of `block` once.
    ///
    /// One map per kind of key, each keyed by a 64-bit fingerprint ([`Fingerprints`]): this
    /// pass runs before every block the policy looks at, and a gigagas block of cheap
    /// transactions has 20,000 to 50,000 of them. One map of an enum of every key took 200-500
    /// ns per transaction in cache misses on 56-byte entries; maps keyed by the addresses
    /// themselves still took 9-14 ms of `erc20` (400-600 ns per transaction, its balance map's
    /// entries 48 bytes), 6-7 ms of `hot-100`; fingerprints 3-4 ms and 2.5-3.3 ms.
    pub(crate) fn of(block: &Block) -> Self {
        const SENDER: u64 = 1;
        const BALANCE: u64 = 2;
        const BARE_CALL: u64 = 3;
        const GROUP: u64 = 4;
        let n = block.transactions.len();
        // Per sender: its last transaction and how many it sent.
        let mut senders: Fingerprints<(u32, u32)> =
            Fingerprints::with_capacity_and_hasher(n, Default::default());
        // Per ERC-20 balance (token, holder): the last transaction.
        let transfers = block
            .transactions
            .iter()
            .filter(|tx| matches!(tx.data.len(), 68 | 100) && tx.kind.is_call())
            .count();
        let mut balances: Fingerprints<u32> =
            Fingerprints::with_capacity_and_hasher(2 * transfers, Default::default());
        // Per bare call's recipient: the last one and how many it received.
        let mut bare_calls: Fingerprints<(u32, u32)> = Fingerprints::default();
        // Per call group (contract, selector): its first and its last transaction.
        let mut groups: Fingerprints<(u32, u32)> = Fingerprints::default();
        // A transaction allowed this share of the gas the block's transactions may use, and
        // predicted to follow none, is heavy (see [`Self::heavy`]).
        // Saturating: a block may hold transactions asking for any gas (they are invalid).
        let gas_limits =
            block.transactions.iter().map(|tx| tx.gas_limit).fold(0, u64::saturating_add);
        let heavy_from = (gas_limits / Self::HEAVY_SHARE).max(Self::MIN_HEAVY_GAS);
        let mut this = Self {
            followed: vec![NONE; n],
            first_follower: vec![NONE; n],
            next_follower: vec![NONE; n],
            call_group: vec![NONE; n],
            previous_call: vec![NONE; n],
            next_call: vec![NONE; n],
            ..Self::default()
        };
        for (j, tx) in block.transactions.iter().enumerate() {
            let j = j as u32;
            // The nearest earlier transaction sharing a key (NONE is the largest u32: start
            // from "none" and keep the largest index that is not NONE).
            let mut followed = NONE;
            let mut nearest = |earlier: u32| {
                // `j` itself: a transfer to oneself names one balance twice.
                if earlier != NONE && earlier != j && (followed == NONE || earlier > followed) {
                    followed = earlier;
                }
            };
            let key = fingerprint(SENDER, &[tx.caller.as_slice()]);
            nearest(extend_chain(&mut senders, key, j, &mut this.longest_sender_chain));
            if let TxKind::Call(to) = tx.kind {
                let data = tx.data.as_ref();
                let mut balance = |holder: Option<Address>| {
                    if let Some(holder) = holder {
                        let key = fingerprint(BALANCE, &[to.as_slice(), holder.as_slice()]);
                        nearest(balances.insert(key, j).unwrap_or(NONE));
                    }
                };
                if data.is_empty() && tx.value.is_zero() {
                    let key = fingerprint(BARE_CALL, &[to.as_slice()]);
                    nearest(extend_chain(&mut bare_calls, key, j, &mut this.longest_bare_chain));
                } else if data.len() == 68 && data[..4] == TRANSFER {
                    balance(Some(tx.caller));
                    balance(address_argument(data, 0));
                } else if data.len() == 100 && data[..4] == TRANSFER_FROM {
                    balance(address_argument(data, 0));
                    balance(address_argument(data, 1));
                }
                if let Some(selector) = data.get(..4) {
                    let key = fingerprint(GROUP, &[to.as_slice(), selector]);
                    let (first, last) = groups.entry(key).or_insert((j, NONE));
                    this.call_group[j as usize] = *first;
                    if *last != NONE {
                        this.previous_call[j as usize] = *last;
                        this.next_call[*last as usize] = j;
                    }
                    *last = j;
                }
            }
            if followed != NONE {
                this.followed[j as usize] = followed;
                this.next_follower[j as usize] = this.first_follower[followed as usize];
                this.first_follower[followed as usize] = j;
            } else if tx.gas_limit >= heavy_from {
                this.heavy.push(j);
            }
        }
        this
    }

    /// A transaction allowed at least this share of the sum of the block's gas limits (and
    /// [`Self::MIN_HEAVY_GAS`]) is heavy.
    const HEAVY_SHARE: u64 = 10;
    /// Below this gas limit no transaction is heavy: a small block's largest transaction
    /// mostly takes tens of microseconds, not worth starting out of order. (A million missed
    /// 19426587's transaction 36: 908,006 gas allowed, 1.7 ms of the block's 3.5 ms.)
    const MIN_HEAVY_GAS: u64 = 500_000;

    /// The transactions, in block order, that may take a large share of the block's time: a
    /// gas limit of at least a tenth of the sum of the block's (and at least half a million), and
    /// no predicted predecessor. Workers start them first (`Scheduler::take_hoisted`): taken
    /// in block order, one that comes late keeps a worker busy after the others have run
    /// out of work (mainnet block 18426253: its transaction 138 takes half the block's time,
    /// and in block order two workers could reach 1.39x at best; started first, 2.00x).
    /// The gas limit is only a bound on what a transaction may use: a heavy one that turns
    /// out cheap costs nothing, one that read a value an earlier transaction writes runs
    /// again at its commit, as any transaction would.
    pub(crate) fn heavy(&self) -> &[u32] {
        &self.heavy
    }

    /// The transaction `tx` is predicted to follow, if any.
    pub(crate) fn followed(&self, tx: usize) -> Option<usize> {
        self.followed.get(tx).copied().filter(|i| *i != NONE).map(|i| i as usize)
    }

    /// The transactions predicted to follow `tx`.
    pub(crate) fn followers_of(&self, tx: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.first_follower.get(tx).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let this = next as usize;
                next = self.next_follower[this];
                this
            })
        })
    }

    /// The call group of `tx` (named by its first transaction), when `tx` calls a contract.
    pub(crate) fn call_group(&self, tx: usize) -> Option<usize> {
        self.call_group.get(tx).copied().filter(|i| *i != NONE).map(|i| i as usize)
    }

    /// The previous transaction of `tx`'s call group.
    pub(crate) fn previous_call(&self, tx: usize) -> Option<usize> {
        self.previous_call.get(tx).copied().filter(|i| *i != NONE).map(|i| i as usize)
    }

    /// The next transaction of `tx`'s call group.
    pub(crate) fn next_call(&self, tx: usize) -> Option<usize> {
        self.next_call.get(tx).copied().filter(|i| *i != NONE).map(|i| i as usize)
    }

    /// How many bare calls (no value, no calldata) the address that received the most got.
    pub(crate) fn longest_bare_chain(&self) -> usize {
        self.longest_bare_chain
    }

    /// Transactions of the busiest sender.
    pub(crate) fn longest_sender_chain(&self) -> usize {
        self.longest_sender_chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use alloy_primitives::{Bytes, U256};
    use revm::{context::TxEnv, primitives::hardfork::SpecId};

    fn address(n: u64) -> Address {
        Address::left_padding_from(&n.to_be_bytes())
    }

    fn call(from: u64, to: u64, value: u64, data: Vec<u8>) -> TxEnv {
        TxEnv {
            caller: address(from),
            kind: TxKind::Call(address(to)),
            value: U256::from(value),
            data: Bytes::from(data),
            ..Default::default()
        }
    }

    fn erc20(selector: [u8; 4], holders: &[u64]) -> Vec<u8> {
        let mut data = selector.to_vec();
        for holder in holders {
            data.extend_from_slice(&[0; 12]);
            data.extend_from_slice(address(*holder).as_slice());
        }
        data.extend_from_slice(&U256::from(5).to_be_bytes::<32>());
        data
    }

    fn predict(transactions: Vec<TxEnv>) -> Predictions {
        Predictions::of(&Block {
            context: BlockContext::new(SpecId::CANCUN, Default::default()),
            transactions,
        })
    }

    fn followed(predictions: &Predictions, n: usize) -> Vec<Option<usize>> {
        (0..n).map(|j| predictions.followed(j)).collect()
    }

    #[test]
    fn fingerprints_tell_keys_apart() {
        // Addresses that differ in one byte anywhere, vanity addresses full of zeros among them.
        let mut seen = std::collections::HashSet::new();
        for position in 0..20 {
            for value in 0..=255u8 {
                let mut bytes = [0u8; 20];
                bytes[position] = value;
                let a = Address::from(bytes);
                assert_eq!(fingerprint(1, &[a.as_slice()]), fingerprint(1, &[a.as_slice()]));
                seen.insert(fingerprint(1, &[a.as_slice()]));
                // The same address as token and as holder names two different balances.
                seen.insert(fingerprint(2, &[a.as_slice(), Address::ZERO.as_slice()]));
                seen.insert(fingerprint(2, &[Address::ZERO.as_slice(), a.as_slice()]));
            }
        }
        // 20 * 255 distinct non-zero addresses, the zero address, three keys each.
        assert_eq!(seen.len(), 3 * (20 * 255 + 1) - 1, "only (0, 0) repeats between the pairs");
    }

    #[test]
    fn heavy_transactions_are_those_allowed_a_tenth_of_the_block_that_follow_none() {
        let with_gas = |from: u64, gas_limit: u64| TxEnv { gas_limit, ..call(from, 99, 1, vec![]) };
        let mut transactions: Vec<TxEnv> = (0..20).map(|i| with_gas(i, 100_000)).collect();
        // 2M + 2M + 1.5M + 1.5M + 20 * 100k = 9M: a tenth is 900k.
        transactions.push(with_gas(100, 2_000_000));
        transactions.push(with_gas(100, 2_000_000)); // the same sender: it follows 20
        transactions.push(with_gas(101, 1_500_000));
        transactions.insert(3, with_gas(102, 1_500_000));
        assert_eq!(predict(transactions).heavy(), [3, 21, 23]);
        // Below half a million gas nothing is heavy, whatever its share.
        let small = (0..4).map(|i| with_gas(i, 400_000)).collect();
        assert!(predict(small).heavy().is_empty());
        // Gas limits that sum past u64::MAX (invalid transactions) do not overflow.
        let huge = vec![with_gas(1, u64::MAX), with_gas(2, u64::MAX), with_gas(3, u64::MAX)];
        assert_eq!(predict(huge).heavy(), [0, 1, 2]);
    }

    #[test]
    fn a_sender_s_transactions_form_a_chain() {
        let p = predict(vec![
            call(1, 100, 1, vec![]),
            call(2, 100, 1, vec![]),
            call(1, 101, 1, vec![]),
            call(1, 102, 1, vec![]),
        ]);
        assert_eq!(followed(&p, 4), [None, None, Some(0), Some(2)]);
        assert_eq!(p.followers_of(0).collect::<Vec<_>>(), [2]);
        assert_eq!(p.followers_of(1).count(), 0);
        assert_eq!(p.longest_sender_chain(), 3);
        assert_eq!(p.longest_bare_chain(), 0, "payments are no bare calls");
    }

    #[test]
    fn token_transfers_to_one_holder_follow_each_other() {
        // Deposits swept to one exchange address (mainnet block 12522062), between two
        // transfers of other holders, and a transferFrom out of the exchange.
        let p = predict(vec![
            call(1, 50, 0, erc20(TRANSFER, &[9])),
            call(2, 50, 0, erc20(TRANSFER, &[10])),
            call(3, 50, 0, erc20(TRANSFER, &[9])),
            call(4, 50, 0, erc20(TRANSFER_FROM, &[9, 11])),
            call(5, 60, 0, erc20(TRANSFER, &[9])),
        ]);
        assert_eq!(followed(&p, 5), [None, None, Some(0), Some(2), None], "other tokens apart");
        assert_eq!(p.longest_bare_chain(), 0);
        // Call groups: token 50's transfers, its transferFrom, token 60's transfer.
        let groups: Vec<_> = (0..5).map(|j| p.call_group(j)).collect();
        assert_eq!(groups, [Some(0), Some(0), Some(0), Some(3), Some(4)]);
        assert_eq!((p.previous_call(0), p.next_call(0)), (None, Some(1)));
        assert_eq!((p.previous_call(2), p.next_call(2)), (Some(1), None));
        assert_eq!((p.previous_call(3), p.next_call(3)), (None, None));
    }

    #[test]
    fn a_transaction_follows_the_nearest_of_the_ones_it_shares_a_key_with() {
        let p = predict(vec![
            call(1, 50, 0, erc20(TRANSFER, &[9])),
            call(2, 50, 0, erc20(TRANSFER, &[8])),
            // Sender 2 (index 1) and holder 9 (index 0): the nearest is index 1.
            call(2, 50, 0, erc20(TRANSFER, &[9])),
        ]);
        assert_eq!(followed(&p, 3), [None, None, Some(1)]);
        assert_eq!(p.followers_of(0).count(), 0);
        assert_eq!(p.followers_of(1).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn bare_calls_follow_but_payments_and_other_calls_do_not() {
        let p = predict(vec![
            call(1, 50, 0, vec![]),
            call(2, 50, 0, vec![]),
            call(3, 60, 7, vec![]),
            call(4, 60, 7, vec![]),
            call(5, 70, 0, vec![1, 2, 3, 4]),
            call(6, 70, 0, vec![1, 2, 3, 4]),
            // A malformed holder word (high bytes set) is no key.
            call(7, 50, 0, {
                let mut data = erc20(TRANSFER, &[9]);
                data[4] = 1;
                data
            }),
        ]);
        assert_eq!(followed(&p, 7), [None, Some(0), None, None, None, None, None]);
        assert_eq!(p.longest_bare_chain(), 2);
    }

    #[test]
    fn a_transfer_to_oneself_does_not_follow_itself() {
        let p = predict(vec![
            call(1, 50, 0, erc20(TRANSFER, &[1])),
            call(2, 50, 0, erc20(TRANSFER, &[1])),
        ]);
        assert_eq!(followed(&p, 2), [None, Some(0)]);
    }

    #[test]
    fn several_transactions_can_follow_one() {
        let p = predict(vec![
            call(1, 50, 0, erc20(TRANSFER, &[9])),
            call(1, 70, 1, vec![]),
            call(2, 50, 0, erc20(TRANSFER, &[1])),
        ]);
        // Index 1 follows sender 1; index 2 follows holder 1 (the sender of index 0), not 1.
        assert_eq!(followed(&p, 3), [None, Some(0), Some(0)]);
        let mut followers: Vec<_> = p.followers_of(0).collect();
        followers.sort_unstable();
        assert_eq!(followers, [1, 2]);
    }
}
