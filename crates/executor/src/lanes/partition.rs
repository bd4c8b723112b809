//! Which lane runs which transaction.
//!
//! A transaction goes to the lane of its sender's *bucket* (a hash of the sender: one sender's
//! transactions stay in one lane, in block order, so its nonces never cross lanes), unless it
//! names a *learned key*: when two transactions in different lanes conflicted, the keys they
//! share (an account both name as sender or recipient, an ERC-20 holder both move tokens of)
//! or, when they share none, their call groups (contract and selector: two calls of a counter's
//! `increment`) are learned, and from the next round on every transaction naming a learned
//! key runs in that key's lane. Keys learned from one conflict share a lane.
//!
//! The first round costs nothing before the lanes start: each lane hashes the senders of the
//! transactions and keeps its own. Later rounds first weigh the learned classes (by gas
//! limit), place them on the lightest lanes, and share the sender buckets out so that each
//! lane gets about the same gas.

use crate::{
    block::Block,
    fingerprint::{fingerprint, Fingerprinted},
    parallel::filter::account_key,
};
use alloy_primitives::{Address, TxKind};
use revm::context::TxEnv;
use std::{collections::HashMap, hash::BuildHasherDefault};

/// Sender buckets (a power of two).
const BUCKETS: usize = 1024;

/// `transfer(address,uint256)`.
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `transferFrom(address,address,uint256)`.
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

const ACCOUNT: u64 = 11;
const BALANCE: u64 = 12;
const GROUP: u64 = 13;

type Keyed<V> = HashMap<u64, V, BuildHasherDefault<Fingerprinted>>;

/// The keys a transaction names: accounts (sender; recipient of value or of a bare call),
/// ERC-20 balances it moves, and its call group. At most five.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// Account and balance keys.
    pub(crate) named: smallvec::SmallVec<[u64; 4]>,
    /// The call group (contract, selector), when the transaction calls with calldata.
    pub(crate) group: Option<u64>,
}

/// The ERC-20 holder in calldata argument `n` (0-based), if the word is an address.
fn address_argument(data: &[u8], n: usize) -> Option<Address> {
    let word = data.get(4 + 32 * n..4 + 32 * (n + 1))?;
    word[..12].iter().all(|b| *b == 0).then(|| Address::from_slice(&word[12..]))
}

impl Keys {
    /// The keys of `tx`.
    pub(crate) fn of(tx: &TxEnv) -> Self {
        let mut keys = Self::default();
        keys.named.push(fingerprint(ACCOUNT, &[tx.caller.as_slice()]));
        if let TxKind::Call(to) = tx.kind {
            let data = tx.data.as_ref();
            if !tx.value.is_zero() || data.is_empty() {
                keys.named.push(fingerprint(ACCOUNT, &[to.as_slice()]));
            }
            let holders = if data.len() == 68 && data[..4] == TRANSFER {
                [Some(tx.caller), address_argument(data, 0)]
            } else if data.len() == 100 && data[..4] == TRANSFER_FROM {
                [address_argument(data, 0), address_argument(data, 1)]
            } else {
                [None, None]
            };
            for holder in holders.into_iter().flatten() {
                keys.named.push(fingerprint(BALANCE, &[to.as_slice(), holder.as_slice()]));
            }
            if let Some(selector) = data.get(..4) {
                keys.group = Some(fingerprint(GROUP, &[to.as_slice(), selector]));
            }
        }
        keys
    }
}

/// What the rounds so far learned: keys that must share a lane, as a union-find.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Each learned key's parent in the union-find (a root is its own parent).
    parent: Keyed<u64>,
}

impl Learned {
    /// Whether nothing was learned.
    pub(crate) fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The class (root key) of `key`, if it was learned.
    fn class(&self, key: u64) -> Option<u64> {
        let mut key = *self.parent.get(&key)?;
        loop {
            let parent = self.parent[&key];
            if parent == key {
                return Some(key);
            }
            key = parent;
        }
    }

    fn root_or_insert(&mut self, key: u64) -> u64 {
        match self.class(key) {
            Some(root) => root,
            None => {
                self.parent.insert(key, key);
                key
            }
        }
    }

    /// Two transactions in different lanes conflicted: the keys they share (or, sharing none,
    /// their call groups, or else all their keys) must share a lane from now on.
    pub(crate) fn conflict(&mut self, a: &Keys, b: &Keys) {
        let shared: Vec<u64> = a.named.iter().filter(|k| b.named.contains(k)).copied().collect();
        let keys = if !shared.is_empty() {
            shared
        } else if let (Some(x), Some(y)) = (a.group, b.group) {
            vec![x, y]
        } else {
            a.named
                .iter()
                .chain(&b.named)
                .chain(a.group.iter())
                .chain(b.group.iter())
                .copied()
                .collect()
        };
        // Classes either transaction already belongs to join too: a transaction takes the
        // lane of the first class it names, so two classes it names must become one.
        let known: Vec<u64> = [a, b]
            .into_iter()
            .flat_map(|k| k.named.iter().chain(k.group.iter()))
            .filter_map(|key| self.class(*key))
            .collect();
        let keys: Vec<u64> = keys.into_iter().chain(known).collect();
        let roots: Vec<u64> = keys.into_iter().map(|key| self.root_or_insert(key)).collect();
        if let Some((&first, rest)) = roots.split_first() {
            for &root in rest {
                if root != first {
                    self.parent.insert(root, first);
                }
            }
        }
    }

    /// The class of the first learned key `keys` names. (A transaction naming keys of two
    /// classes takes the first; if they conflict, the next round learns that too.)
    fn class_of(&self, keys: &Keys) -> Option<u64> {
        if self.parent.is_empty() {
            return None;
        }
        keys.named.iter().chain(keys.group.iter()).find_map(|key| self.class(*key))
    }
}

/// The lane of every transaction of one round.
#[derive(Debug)]
pub(crate) struct Plan {
    /// What the plan allows at most: the round's gas over its busiest lane's.
    pub(crate) speedup_cap: f64,
    /// The lane of each sender bucket.
    bucket_lane: Vec<u8>,
    /// The lane of each learned class.
    class_lane: Keyed<u8>,
    learned: bool,
}

/// The sender bucket of `tx`.
fn bucket(tx: &TxEnv) -> usize {
    (account_key(&tx.caller) >> 54) as usize & (BUCKETS - 1)
}

impl Plan {
    /// A plan for `lanes` lanes over the transactions of `block` from `start` on.
    pub(crate) fn new(block: &Block, start: usize, lanes: usize, learned: &Learned) -> Self {
        let lanes = lanes.clamp(1, 255);
        if learned.is_empty() {
            let bucket_lane = (0..BUCKETS).map(|b| (b * lanes / BUCKETS) as u8).collect();
            let speedup_cap = lanes as f64;
            return Self { speedup_cap, bucket_lane, class_lane: Keyed::default(), learned: false };
        }
        // Weigh the learned classes and the buckets of everything else.
        let mut class_gas: Keyed<u64> = Keyed::default();
        let mut bucket_gas = vec![0u64; BUCKETS];
        for tx in &block.transactions[start..] {
            match learned.class_of(&Keys::of(tx)) {
                Some(class) => *class_gas.entry(class).or_default() += tx.gas_limit,
                None => bucket_gas[bucket(tx)] += tx.gas_limit,
            }
        }
        // Heaviest class first onto the lightest lane.
        let mut load = vec![0u64; lanes];
        let mut classes: Vec<(u64, u64)> = class_gas.into_iter().collect();
        classes.sort_unstable_by_key(|(class, gas)| (std::cmp::Reverse(*gas), *class));
        let mut class_lane = Keyed::default();
        for (class, gas) in classes {
            let lane = lightest(&load);
            load[lane] += gas;
            class_lane.insert(class, lane as u8);
        }
        // Buckets in order onto the lightest lane.
        let bucket_lane = bucket_gas
            .iter()
            .map(|gas| {
                let lane = lightest(&load);
                load[lane] += gas;
                lane as u8
            })
            .collect();
        let busiest = load.iter().copied().max().unwrap_or(0);
        let speedup_cap = load.iter().sum::<u64>() as f64 / busiest.max(1) as f64;
        Self { speedup_cap, bucket_lane, class_lane, learned: true }
    }

    /// The lane of `tx`.
    pub(crate) fn lane_of(&self, tx: &TxEnv, learned: &Learned) -> usize {
        if self.learned {
            if let Some(class) = learned.class_of(&Keys::of(tx)) {
                return self.class_lane.get(&class).copied().unwrap_or(0) as usize;
            }
        }
        self.bucket_lane[bucket(tx)] as usize
    }
}

/// The lane with the least load.
fn lightest(load: &[u64]) -> usize {
    (0..load.len()).min_by_key(|lane| load[*lane]).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use alloy_primitives::{Bytes, U256};
    use revm::primitives::hardfork::SpecId;

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

    pub(super) fn block(transactions: Vec<TxEnv>) -> Block {
        Block { context: BlockContext::new(SpecId::CANCUN, Default::default()), transactions }
    }

    #[test]
    fn one_senders_transactions_share_a_lane_and_senders_spread() {
        let block = block((0..400).map(|i| tx(i % 100, 1_000 + i, 1, &[])).collect());
        let learned = Learned::default();
        let plan = Plan::new(&block, 0, 2, &learned);
        let lanes: Vec<usize> =
            block.transactions.iter().map(|t| plan.lane_of(t, &learned)).collect();
        for i in 0..300 {
            assert_eq!(lanes[i], lanes[i + 100], "sender {}", i % 100);
        }
        let first = lanes.iter().filter(|l| **l == 0).count();
        assert!((100..300).contains(&first), "{first} of 400 in lane 0");
    }

    #[test]
    fn learned_keys_gather_their_transactions_in_one_lane() {
        // Calls of one counter's hot function (selector 1) and of a per-sender one (selector 2).
        let hot = |i: u64| tx(i, 9, 0, &[0, 0, 0, 1]);
        let cold = |i: u64| tx(i, 9, 0, &[0, 0, 0, 2]);
        let block = block((0..300).map(|i| if i % 3 == 0 { hot(i) } else { cold(i) }).collect());
        let mut learned = Learned::default();
        learned.conflict(&Keys::of(&block.transactions[0]), &Keys::of(&block.transactions[3]));
        let plan = Plan::new(&block, 0, 2, &learned);
        let lanes: Vec<usize> =
            block.transactions.iter().map(|t| plan.lane_of(t, &learned)).collect();
        let hot_lane = lanes[0];
        assert!((0..300).step_by(3).all(|i| lanes[i] == hot_lane), "every hot call in one lane");
        let in_hot_lane = lanes.iter().filter(|l| **l == hot_lane).count();
        assert!((120..=180).contains(&in_hot_lane), "balanced by gas: {in_hot_lane} of 300");
        assert!(plan.speedup_cap > 1.6, "{}", plan.speedup_cap);
        // When every call is a hot one, one lane gets them all.
        let block_hot = super::tests::block((0..300).map(hot).collect());
        assert!(Plan::new(&block_hot, 0, 2, &learned).speedup_cap < 1.01);
        // Payments to one recipient from two senders share the recipient's key.
        let (a, b) = (Keys::of(&tx(1, 7, 5, &[])), Keys::of(&tx(2, 7, 5, &[])));
        let mut learned = Learned::default();
        learned.conflict(&a, &b);
        assert_eq!(learned.class_of(&a), learned.class_of(&b));
        assert!(learned.class_of(&Keys::of(&tx(3, 8, 5, &[]))).is_none());
    }
}
