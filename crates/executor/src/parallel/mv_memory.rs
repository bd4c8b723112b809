//! Multi-version memory: for every state location, the value each transaction wrote there.
//!
//! A location is an account (balance, nonce, code together), an account's storage *wipe*
//! (self-destruct or re-creation), or a storage slot. A transaction reading location `L`
//! sees the write of the highest transaction below it; with none, the pre-block state.
//!
//! Two kinds of account writes keep real blocks parallel:
//! - [`AccountWrite::Absolute`]: the account's whole value after the transaction.
//! - [`AccountWrite::Credit`]: the transaction only *added* to the balance without looking at
//!   it (a value transfer to a non-empty account, the block's fee to the beneficiary). Credits
//!   commute: many of them to one account do not conflict. A read folds every credit above the
//!   last absolute write, in order, with EIP-161 touch semantics (a credit of zero to an empty
//!   account removes it after Spurious Dragon, creates it before).
//!
//! Storage wipes are versioned too: a slot read takes the newer of the slot's last write and
//! the account's last wipe, so a contract destroyed and redeployed at the same address in one
//! block needs no fallback.
//!
//! The maps are sharded by address, each shard behind its own reader-writer lock: there is no
//! global lock, and readers of different accounts never touch the same cache line. In front of
//! them a lock-free filter ([`super::filter`]) answers reads of locations nobody wrote, the
//! common case, without taking any lock; a flag does the same for storage wipes, which most
//! blocks never have.

use super::filter::{account_key, slot_key, WrittenFilter};
use alloy_primitives::{map::HashMap, Address, U256};
use crossbeam_utils::CachePadded;
use parking_lot::RwLock;
use revm::state::AccountInfo;
use smallvec::SmallVec;
use std::{
    ops::Bound,
    sync::atomic::{AtomicBool, Ordering},
};

/// Index of a transaction in its block.
pub(crate) type TxIdx = usize;

/// What a transaction wrote to an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AccountWrite {
    /// The account's value after the transaction; `None` when it no longer exists. Boxed: an
    /// account value is 96 bytes, a credit 32, and every transaction adds a version to the
    /// beneficiary's list (a credit, nearly always).
    Absolute(Option<Box<AccountInfo>>),
    /// The transaction added this much to the balance and did not otherwise look at the account.
    Credit(U256),
}

/// A location a transaction wrote, remembered so that a re-execution can retract the writes it
/// no longer makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// The account value.
    Account(Address),
    /// The account's storage wipe marker.
    Wipe(Address),
    /// One storage slot.
    Storage(Address, U256),
}

/// Everything one transaction incarnation wrote.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteSet {
    pub(crate) accounts: Vec<(Address, AccountWrite)>,
    pub(crate) wipes: Vec<Address>,
    pub(crate) storage: Vec<(Address, U256, U256)>,
    /// Pre-block values of written accounts without code, as the transaction read them before
    /// anything below it wrote them. [`MvMemory::publish`] keeps them, so that finalisation
    /// compares with the pre-block state without looking every written account up again.
    pub(crate) pre_block: Vec<(Address, PreBlock)>,
}

impl WriteSet {
    pub(crate) fn clear(&mut self) {
        self.accounts.clear();
        self.wipes.clear();
        self.storage.clear();
        self.pre_block.clear();
    }

    fn locations(&self) -> impl Iterator<Item = Location> + '_ {
        self.accounts
            .iter()
            .map(|(a, _)| Location::Account(*a))
            .chain(self.wipes.iter().map(|a| Location::Wipe(*a)))
            .chain(self.storage.iter().map(|(a, k, _)| Location::Storage(*a, *k)))
    }
}

/// Applies one credit to an account value, with the touch semantics of EIP-161.
pub(crate) fn apply_credit(
    value: Option<AccountInfo>,
    amount: U256,
    spurious_dragon: bool,
) -> Option<AccountInfo> {
    // Not `AccountInfo::default()`: that allocates an empty code.
    let mut info = value.unwrap_or(AccountInfo {
        balance: U256::ZERO,
        nonce: 0,
        code_hash: revm::primitives::KECCAK_EMPTY,
        account_id: None,
        code: None,
    });
    info.balance = info.balance.saturating_add(amount);
    if spurious_dragon && info.is_empty() {
        None
    } else {
        Some(info)
    }
}

/// Applies credits in order: the same as [`apply_credit`] one by one, with one account copy
/// instead of one per credit. Only while the account is missing (or empty, after Spurious
/// Dragon) can a credit create or remove it; after that a credit only adds to the balance, and
/// saturating additions of non-negative amounts can be summed first.
pub(crate) fn apply_credits_in_order(
    mut value: Option<AccountInfo>,
    credits: impl IntoIterator<Item = U256>,
    spurious_dragon: bool,
) -> Option<AccountInfo> {
    let mut credits = credits.into_iter();
    while value.as_ref().is_none_or(|info| spurious_dragon && info.is_empty()) {
        let Some(amount) = credits.next() else { return value };
        value = apply_credit(value, amount, spurious_dragon);
    }
    let sum = credits.fold(U256::ZERO, |sum, amount| sum.saturating_add(amount));
    if let Some(info) = value.as_mut() {
        info.balance = info.balance.saturating_add(sum);
    }
    value
}

/// How many of `versions` (sorted by transaction) are below `tx`. Searched from the newest
/// end, galloping: nearly every lookup is of a transaction at or near the end (the one being
/// published or committed, or the start of a fold), and an account credited by every
/// transaction (the beneficiary) holds one version per transaction, megabytes that a plain
/// binary search would probe at cold midpoints on every insert and commit.
fn versions_below<T>(versions: &[(TxIdx, T)], tx: TxIdx) -> usize {
    // Every version at or after `end` is at or above `tx`.
    let mut end = versions.len();
    let mut step = 1;
    while end > 0 && versions[end - 1].0 >= tx {
        let probe = end.saturating_sub(step);
        if versions[probe].0 < tx {
            // The split is after `probe` and at or before `end - 1`.
            return probe + 1 + versions[probe + 1..end].partition_point(|(i, _)| *i < tx);
        }
        end = probe;
        step *= 2;
    }
    end
}

/// The versions of one location: `(transaction, value)` sorted by transaction. Most locations
/// have one writer, so the first version lives inline.
#[derive(Clone, Debug)]
pub(crate) struct Versions<T>(SmallVec<[(TxIdx, T); 1]>);

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<T> Versions<T> {
    /// How many versions are below `tx` ([`versions_below`]).
    fn split(&self, tx: TxIdx) -> usize {
        versions_below(&self.0, tx)
    }

    /// The versions written below `tx`, oldest first.
    fn below(&self, tx: TxIdx) -> &[(TxIdx, T)] {
        &self.0[..self.split(tx)]
    }

    /// The newest version below `tx`.
    fn last_below(&self, tx: TxIdx) -> Option<&(TxIdx, T)> {
        self.below(tx).last()
    }

    /// Where the version of `tx` is, if there is one.
    fn position(&self, tx: TxIdx) -> Result<usize, usize> {
        let at = self.split(tx);
        match self.0.get(at) {
            Some((index, _)) if *index == tx => Ok(at),
            _ => Err(at),
        }
    }

    /// Inserts or replaces the version of `tx`.
    fn insert(&mut self, tx: TxIdx, value: T) {
        match self.position(tx) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (tx, value)),
        }
    }

    /// Removes the version of `tx`, if any.
    fn remove(&mut self, tx: TxIdx) {
        if let Ok(at) = self.position(tx) {
            self.0.remove(at);
        }
    }

    /// The version of `tx`, if any.
    fn get(&self, tx: TxIdx) -> Option<&T> {
        self.position(tx).ok().map(|at| &self.0[at].1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn last(&self) -> Option<&(TxIdx, T)> {
        self.0.last()
    }
}

#[derive(Debug, Default)]
struct AccountVersions {
    writes: Versions<AccountWrite>,
    wipes: Versions<()>,
    /// The value after the last *committed* write `(index, value)`, every committed write
    /// folded in. Readers start from it instead of folding all the way down, which keeps a
    /// read of an account credited by every transaction (the beneficiary) short; after the
    /// last commit it is the account's final value.
    committed: Option<Box<(TxIdx, Option<AccountInfo>)>>,
    /// The value after every version up to and including index `.0`, left by a reader that
    /// folded a long run of credits (ahead of the commit frontier, where no committed
    /// checkpoint helps yet), so that the next reader folds only the credits after it. Dropped
    /// when a version at or below that index changes.
    folded: Option<Box<(TxIdx, Option<AccountInfo>)>>,
    /// Counts the changes to `writes`: a reader stores its fold in `folded` only if none
    /// happened between its fold and taking the write lock.
    revision: u32,
    /// The pre-block value, kept once known for this written account (folding credits onto
    /// it, and comparing the final value with it).
    base: PreBlock,
}

/// An account's pre-block value as its versions keep it. Nearly every written account is one
/// without code, whose balance and nonce are all of it: those are kept inline, the rest boxed.
#[derive(Clone, Debug, Default)]
pub(crate) enum PreBlock {
    /// Not known yet.
    #[default]
    Unknown,
    /// The account did not exist.
    Missing,
    /// An account without code.
    Plain { balance: U256, nonce: u64 },
    /// An account with code.
    Other(Box<AccountInfo>),
}

impl PreBlock {
    fn of(value: &Option<AccountInfo>) -> Self {
        match value {
            None => Self::Missing,
            Some(info) if info.code_hash == revm::primitives::KECCAK_EMPTY => {
                Self::Plain { balance: info.balance, nonce: info.nonce }
            }
            Some(info) => Self::Other(Box::new(info.clone())),
        }
    }

    /// The value, unless not known yet.
    fn get(&self) -> Option<Option<AccountInfo>> {
        match self {
            Self::Unknown => None,
            Self::Missing => Some(None),
            Self::Plain { balance, nonce } => Some(Some(AccountInfo {
                balance: *balance,
                nonce: *nonce,
                code_hash: revm::primitives::KECCAK_EMPTY,
                account_id: None,
                code: None,
            })),
            Self::Other(info) => Some(Some((**info).clone())),
        }
    }

    fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown)
    }
}

impl AccountVersions {
    /// Records that the version of `tx` was inserted, replaced or removed.
    fn changed(&mut self, tx: TxIdx) {
        self.revision = self.revision.wrapping_add(1);
        if self.folded.as_deref().is_some_and(|(at, _)| *at >= tx) {
            self.folded = None;
        }
    }

    /// Keeps `value`, the fold of every version below `tx`, unless a newer fold is kept.
    fn leave_fold(&mut self, tx: TxIdx, value: &Option<AccountInfo>) {
        let at = tx - 1;
        if self.folded.as_deref().is_none_or(|(old, _)| *old < at) {
            self.folded = Some(Box::new((at, value.clone())));
        }
    }
}

const SHARDS: usize = 64;

/// Credits an account may pile up before the committer folds them into a checkpoint, and
/// the credits a reader may fold before it leaves its fold for the next reader.
const CHECKPOINT_EVERY: usize = 8;

fn shard_of(address: &Address, salt: u8) -> usize {
    (address[19] ^ address[7] ^ salt) as usize % SHARDS
}

/// The account shard of `address`: by its leading bits, so that every address of a shard is
/// below every address of the next one and finalisation gets address order by sorting each
/// shard on its own ([`MvMemory::final_accounts`]). Addresses are hashes, spread evenly.
fn account_shard(address: &Address) -> usize {
    const { assert!(256 % SHARDS == 0) };
    address[0] as usize / (256 / SHARDS)
}

/// One shard: a map behind its own lock, on its own cache line.
type Shard<K, V> = CachePadded<RwLock<HashMap<K, V>>>;

#[derive(Debug)]
struct Shards<K, V> {
    shards: Box<[Shard<K, V>]>,
    /// The capacity a shard's table gets when its first location is inserted
    /// ([`Self::write_sized`]).
    each: usize,
}

impl<K: Eq + std::hash::Hash, V> Shards<K, V> {
    /// Shards sized for about `locations` locations in all, so that they do not grow (rehash
    /// and fault in fresh pages) while workers race through the block.
    fn with_capacity(locations: usize) -> Self {
        let each = locations / SHARDS + 1;
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    CachePadded::new(RwLock::new(HashMap::with_capacity_and_hasher(
                        each,
                        Default::default(),
                    )))
                })
                .collect(),
            each,
        }
    }

    /// Shards that get their share of `locations` when their first location is inserted:
    /// for estimates that may be far too high. The slot estimate counts two slots per contract
    /// call, right for token transfers between distinct holders (`erc20`: 45,000 written, all
    /// shards busy) and far off when the calls share their slots (`hot-100`: one slot written,
    /// where 115,000 allocated up front at 104 bytes each were 12 MB, a third of the
    /// sequential run's peak heap). Halving the estimate instead also saved it, but made every
    /// `erc20` table grow (rehash) mid-block.
    fn sized_on_first_insert(locations: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| CachePadded::new(RwLock::default())).collect(),
            each: locations / SHARDS + 1,
        }
    }

    /// Shard `index` locked for writing, its table sized on the first insert.
    fn write_sized(&self, index: usize) -> parking_lot::RwLockWriteGuard<'_, HashMap<K, V>> {
        let mut shard = self.shards[index].write();
        if shard.capacity() == 0 {
            shard.reserve(self.each);
        }
        shard
    }
}

/// The multi-version store of one block execution.
#[derive(Debug)]
pub(crate) struct MvMemory {
    accounts: Shards<Address, AccountVersions>,
    storage: Shards<(Address, U256), Versions<U256>>,
    /// Accounts and slots that may have been written (set before each write is inserted).
    written: WrittenFilter,
    /// Whether any storage wipe was published (set before the first is inserted).
    any_wipe: AtomicBool,
    spurious_dragon: bool,
}

/// What the latest version below a reader says about a slot.
pub(crate) enum SlotVersion {
    /// A write or a wipe decided the value.
    Written(U256),
    /// Nothing below the reader touched it: read the pre-block state.
    Base,
}

/// Where a fold of account versions starts.
enum FoldStart {
    /// From this value, then the credits after this index.
    At(Option<AccountInfo>, Bound<TxIdx>),
    /// From the pre-block value, then every credit.
    Base,
}

impl MvMemory {
    /// An empty store for a block of the given fork.
    #[cfg(test)]
    pub(crate) fn new(spurious_dragon: bool) -> Self {
        Self::with_capacity(spurious_dragon, 0, 0)
    }

    /// An empty store sized for about `accounts` written accounts and `slots` written slots
    /// (an estimate: shards grow past it when needed).
    pub(crate) fn with_capacity(spurious_dragon: bool, accounts: usize, slots: usize) -> Self {
        Self {
            accounts: Shards::with_capacity(accounts),
            storage: Shards::sized_on_first_insert(slots),
            written: WrittenFilter::with_capacity(accounts.saturating_add(slots)),
            any_wipe: AtomicBool::new(false),
            spurious_dragon,
        }
    }

    fn fold(&self, versions: &AccountVersions, tx: TxIdx) -> FoldStart {
        // The newest checkpoint below `tx`: the committed one or one a reader left.
        let committed = versions.committed.as_deref().filter(|(at, _)| *at < tx);
        let folded = versions.folded.as_deref().filter(|(at, _)| *at < tx);
        let checkpoint = match (committed, folded) {
            (Some(committed), Some(folded)) => {
                Some(if folded.0 > committed.0 { folded } else { committed })
            }
            (committed, folded) => committed.or(folded),
        };
        for (index, write) in versions.writes.below(tx).iter().rev() {
            if let Some((at, folded)) = checkpoint.filter(|(at, _)| index <= at) {
                return FoldStart::At(folded.clone(), Bound::Excluded(*at));
            }
            if let AccountWrite::Absolute(v) = write {
                return FoldStart::At(v.as_deref().cloned(), Bound::Excluded(*index));
            }
        }
        match versions.base.get() {
            Some(base) => FoldStart::At(base, Bound::Unbounded),
            None => FoldStart::Base,
        }
    }

    /// `value` with the credits below `tx` after `from` applied, and how many there were.
    fn credits_onto(
        &self,
        versions: &AccountVersions,
        value: Option<AccountInfo>,
        from: Bound<TxIdx>,
        tx: TxIdx,
    ) -> (Option<AccountInfo>, usize) {
        let below = versions.writes.below(tx);
        let first = match from {
            Bound::Excluded(start) => versions_below(below, start + 1),
            _ => 0,
        };
        // Everything after the fold's start is a credit (the start is the last absolute write
        // or a checkpoint above it).
        let credits = below[first..].iter().filter_map(|(_, write)| match write {
            AccountWrite::Credit(amount) => Some(*amount),
            AccountWrite::Absolute(_) => None,
        });
        (apply_credits_in_order(value, credits, self.spurious_dragon), below.len() - first)
    }

    /// Leaves `value`, the fold of every version below `tx`, for later readers of `address`,
    /// unless the versions changed since `revision` or a newer fold is already there.
    fn leave_fold_after_read(
        &self,
        address: Address,
        tx: TxIdx,
        revision: u32,
        value: &Option<AccountInfo>,
    ) {
        let mut shard = self.accounts.shards[account_shard(&address)].write();
        let Some(versions) = shard.get_mut(&address) else { return };
        if versions.revision == revision {
            versions.leave_fold(tx, value);
        }
    }

    /// The value of `address` as transaction `tx` must see it; `base` gives the pre-block value.
    /// The flag says whether the value is the pre-block one because nothing below `tx` wrote
    /// the account (validation then only has to check that this is still so).
    pub(crate) fn read_account<E>(
        &self,
        address: Address,
        tx: TxIdx,
        base: impl FnOnce() -> Result<Option<AccountInfo>, E>,
    ) -> Result<(Option<AccountInfo>, bool), E> {
        if !self.written.may_contain(account_key(&address)) {
            return Ok((base()?, true));
        }
        let shard = self.accounts.shards[account_shard(&address)].read();
        let Some(versions) = shard.get(&address) else {
            drop(shard);
            return Ok((base()?, true));
        };
        if versions.writes.below(tx).is_empty() {
            if let Some(value) = versions.base.get() {
                return Ok((value, true));
            }
            drop(shard);
            return Ok((base()?, true));
        }
        if let FoldStart::At(value, from) = self.fold(versions, tx) {
            let revision = versions.revision;
            let (value, folded) = self.credits_onto(versions, value, from, tx);
            drop(shard);
            if folded >= CHECKPOINT_EVERY {
                self.leave_fold_after_read(address, tx, revision, &value);
            }
            return Ok((value, false));
        }
        drop(shard);
        // Credits on the pre-block value: fetch it outside the lock, keep it, and fold again
        // (the versions may have changed meanwhile; a speculative read is validated anyway).
        let value = base()?;
        let mut shard = self.accounts.shards[account_shard(&address)].write();
        let Some(versions) = shard.get_mut(&address) else { return Ok((value, true)) };
        if !versions.base.is_known() {
            versions.base = PreBlock::of(&value);
        }
        let (start, from) = match self.fold(versions, tx) {
            FoldStart::At(start, from) => (start, from),
            FoldStart::Base => (value, Bound::Unbounded),
        };
        let (value, folded) = self.credits_onto(versions, start, from, tx);
        if folded >= CHECKPOINT_EVERY {
            versions.leave_fold(tx, &value);
        }
        Ok((value, false))
    }

    /// Whether a transaction below `tx` wrote the account `address`.
    pub(crate) fn account_written_below(&self, address: Address, tx: TxIdx) -> bool {
        if !self.written.may_contain(account_key(&address)) {
            return false;
        }
        let shard = self.accounts.shards[account_shard(&address)].read();
        shard.get(&address).is_some_and(|versions| !versions.writes.below(tx).is_empty())
    }

    /// The transactions below `tx` whose writes an account read of `address` depends on: the
    /// last absolute write, and when the reader looked at the balance every credit above it.
    pub(crate) fn account_writers(
        &self,
        address: Address,
        tx: TxIdx,
        balance: bool,
        out: &mut Vec<TxIdx>,
    ) {
        let shard = self.accounts.shards[account_shard(&address)].read();
        let Some(versions) = shard.get(&address) else { return };
        for (index, write) in versions.writes.below(tx).iter().rev() {
            match write {
                AccountWrite::Absolute(_) => {
                    out.push(*index);
                    return;
                }
                AccountWrite::Credit(_) if balance => out.push(*index),
                AccountWrite::Credit(_) => {}
            }
        }
    }

    /// The transaction below `tx` that decided the value of a slot read: its last writer or
    /// the account's last wipe, whichever is newer.
    pub(crate) fn slot_writer(
        &self,
        address: Address,
        slot: Option<U256>,
        tx: TxIdx,
    ) -> Option<TxIdx> {
        let written = slot.and_then(|slot| {
            let shard = self.storage.shards[shard_of(&address, slot.byte(0))].read();
            shard.get(&(address, slot)).and_then(|v| v.last_below(tx).map(|(i, _)| *i))
        });
        written.max(self.last_wipe_below(address, tx))
    }

    fn last_wipe_below(&self, address: Address, tx: TxIdx) -> Option<TxIdx> {
        if !self.any_wipe.load(Ordering::Acquire) {
            return None;
        }
        let shard = self.accounts.shards[account_shard(&address)].read();
        shard.get(&address).and_then(|versions| versions.wipes.last_below(tx).map(|(i, _)| *i))
    }

    /// Whether a transaction below `tx` wiped the storage of `address`.
    pub(crate) fn wiped_below(&self, address: Address, tx: TxIdx) -> bool {
        self.last_wipe_below(address, tx).is_some()
    }

    /// The latest version of slot `slot` of `address` below transaction `tx`.
    pub(crate) fn read_slot(&self, address: Address, slot: U256, tx: TxIdx) -> SlotVersion {
        let written = if !self.written.may_contain(slot_key(&address, &slot)) {
            None
        } else {
            let shard = self.storage.shards[shard_of(&address, slot.byte(0))].read();
            shard.get(&(address, slot)).and_then(|versions| versions.last_below(tx).copied())
        };
        match (written, self.last_wipe_below(address, tx)) {
            (Some((written_at, value)), Some(wiped_at)) if written_at >= wiped_at => {
                SlotVersion::Written(value)
            }
            (Some(_), Some(_)) | (None, Some(_)) => SlotVersion::Written(U256::ZERO),
            (Some((_, value)), None) => SlotVersion::Written(value),
            (None, None) => SlotVersion::Base,
        }
    }

    /// Publishes the writes of transaction `tx` (moving its account writes out of `writes`)
    /// and retracts the writes of its previous incarnation that this one no longer makes.
    /// `written` holds the locations of the previous incarnation on entry and those of this one
    /// on return. `credited` receives the accounts `tx` credited that hold enough versions for
    /// [`Self::commit`] to consider a checkpoint (an account credited a few times needs none:
    /// reads fold its few credits).
    pub(crate) fn publish(
        &self,
        tx: TxIdx,
        writes: &mut WriteSet,
        written: &mut Vec<Location>,
        credited: &mut Vec<Address>,
    ) {
        // The previous incarnation's locations stay at the front until the new ones are in.
        let previous = written.len();
        credited.clear();
        // Wipes first: a reader that sees a destroyed account also sees its wipe.
        if !writes.wipes.is_empty() {
            self.any_wipe.store(true, Ordering::Release);
        }
        for address in &writes.wipes {
            self.written.mark(account_key(address));
            self.accounts.shards[account_shard(address)]
                .write()
                .entry(*address)
                .or_default()
                .wipes
                .insert(tx, ());
        }
        for (address, write) in &mut writes.accounts {
            let write = std::mem::replace(write, AccountWrite::Credit(U256::ZERO));
            let pre_block = || {
                writes.pre_block.iter().find(|(a, _)| a == address).map(|(_, value)| value.clone())
            };
            if self.insert_account_write(tx, *address, write, pre_block) {
                credited.push(*address);
            }
        }
        for (address, slot, value) in &writes.storage {
            self.written.mark(slot_key(address, slot));
            self.storage
                .write_sized(shard_of(address, slot.byte(0)))
                .entry((*address, *slot))
                .or_default()
                .insert(tx, *value);
        }
        written.extend(writes.locations());
        if previous > 0 {
            let (before, now) = written.split_at(previous);
            let current: std::collections::HashSet<Location> = now.iter().copied().collect();
            for location in before.iter().filter(|l| !current.contains(l)) {
                self.retract(tx, *location);
            }
            written.drain(..previous);
        }
    }

    /// Credits `amount` to `address` as a write of transaction `tx`, which is committed (as is
    /// every transaction below it) and did not otherwise write `address`: the fees a run of
    /// committed transactions owe the beneficiary, summed, `tx` the last of them (see the
    /// scheduler's `flush_fees`). Published by the committer rather than by the
    /// executing worker, so that the beneficiary's versions, which every transaction adds to,
    /// stay on the committing core instead of moving between workers on every publish; a
    /// transaction reading the beneficiary ahead of the commit frontier misses fees still to
    /// be committed, and validation (after they are) re-executes it. Returns whether the
    /// account holds enough versions for [`Self::commit`] to consider a checkpoint.
    pub(crate) fn credit_on_commit(&self, tx: TxIdx, address: Address, amount: U256) -> bool {
        self.insert_account_write(tx, address, AccountWrite::Credit(amount), || None)
    }

    /// Inserts (or replaces) the version of `tx` of `address`; `pre_block` gives the pre-block
    /// value when the writer knows it (asked only while the account's is unknown). Returns
    /// whether `write` is a credit that left the account with enough versions for
    /// [`Self::commit`] to consider a checkpoint.
    fn insert_account_write(
        &self,
        tx: TxIdx,
        address: Address,
        write: AccountWrite,
        pre_block: impl FnOnce() -> Option<PreBlock>,
    ) -> bool {
        self.written.mark(account_key(&address));
        let is_credit = matches!(write, AccountWrite::Credit(_));
        let mut shard = self.accounts.shards[account_shard(&address)].write();
        let versions = shard.entry(address).or_default();
        versions.writes.insert(tx, write);
        versions.changed(tx);
        if !versions.base.is_known() {
            if let Some(value) = pre_block() {
                versions.base = value;
            }
        }
        is_credit && versions.writes.0.len() >= CHECKPOINT_EVERY
    }

    /// Keeps reads of heavily credited accounts short: when transaction `tx` (just committed;
    /// every transaction below it is committed) credited an account that has piled up
    /// [`CHECKPOINT_EVERY`] credits since its last absolute write or checkpoint, the folded
    /// value becomes the account's new committed checkpoint. `credited` lists the accounts
    /// `tx` credited that [`Self::publish`] found with enough versions; nothing else needs
    /// work here. Checkpoints only shorten reads: without them every fold is the same.
    pub(crate) fn commit<E>(
        &self,
        tx: TxIdx,
        credited: &[Address],
        base: impl Fn(Address) -> Result<Option<AccountInfo>, E>,
    ) -> Result<(), E> {
        for address in credited {
            // Decided under a read lock: seven commits in eight need no checkpoint, and readers
            // of the beneficiary's shard need not wait. What is committed
            // cannot change, so the answer still holds under the write lock.
            let shard = self.accounts.shards[account_shard(address)].read();
            if shard.get(address).is_none_or(|versions| !Self::checkpoint_due(versions, tx)) {
                continue;
            }
            drop(shard);
            let mut shard = self.accounts.shards[account_shard(address)].write();
            let Some(versions) = shard.get_mut(address) else { continue };
            let (start, from) = match self.fold(versions, tx + 1) {
                FoldStart::At(start, from) => (start, from),
                FoldStart::Base => {
                    let value = base(*address)?;
                    versions.base = PreBlock::of(&value);
                    (value, Bound::Unbounded)
                }
            };
            let (value, _) = self.credits_onto(versions, start, from, tx + 1);
            versions.committed = Some(Box::new((tx, value)));
        }
        Ok(())
    }

    /// Whether committing `tx`, which credited the account, leaves [`CHECKPOINT_EVERY`] credits
    /// since the account's last absolute write or checkpoint.
    fn checkpoint_due(versions: &AccountVersions, tx: TxIdx) -> bool {
        if !matches!(versions.writes.get(tx), Some(AccountWrite::Credit(_))) {
            return false;
        }
        let since = versions.committed.as_deref().map(|(at, _)| *at);
        let pending = versions
            .writes
            .below(tx + 1)
            .iter()
            .rev()
            .take_while(|(index, write)| {
                matches!(write, AccountWrite::Credit(_)) && since.is_none_or(|at| *index > at)
            })
            .take(CHECKPOINT_EVERY)
            .count();
        pending >= CHECKPOINT_EVERY
    }

    /// Removes every write of transaction `tx` (it turned out invalid for the block).
    pub(crate) fn retract_all(&self, tx: TxIdx, written: &mut Vec<Location>) {
        for location in written.drain(..) {
            self.retract(tx, location);
        }
    }

    fn retract(&self, tx: TxIdx, location: Location) {
        match location {
            Location::Account(address) => {
                if let Some(v) =
                    self.accounts.shards[account_shard(&address)].write().get_mut(&address)
                {
                    v.writes.remove(tx);
                    v.changed(tx);
                }
            }
            Location::Wipe(address) => {
                if let Some(v) =
                    self.accounts.shards[account_shard(&address)].write().get_mut(&address)
                {
                    v.wipes.remove(tx);
                }
            }
            Location::Storage(address, slot) => {
                if let Some(v) = self.storage.shards[shard_of(&address, slot.byte(0))]
                    .write()
                    .get_mut(&(address, slot))
                {
                    v.remove(tx);
                }
            }
        }
    }

    /// Number of shards of each map; [`Self::final_accounts`] and [`Self::final_slots`] take a
    /// shard index below it, so that workers can finalise shards in parallel.
    pub(crate) const SHARDS: usize = SHARDS;

    /// The account shard of `address`: shards split the addresses by their leading bits, so
    /// every address of shard `i` is below every address of shard `i + 1`.
    pub(crate) fn account_shard(address: &Address) -> usize {
        account_shard(address)
    }

    /// Releases the memory of account shard `shard`, once nothing reads it any more (every
    /// account and slot final is taken).
    pub(crate) fn release_accounts(&self, shard: usize) {
        drop(std::mem::take(&mut *self.accounts.shards[shard].write()));
    }

    /// The final state of every account of account shard `shard` that a committed
    /// transaction wrote or wiped, once every transaction has committed. Every address of
    /// shard `i` is below every address of shard `i + 1`.
    ///
    /// Without storage wipes in the block nothing reads the shard afterwards (slot finals only
    /// look at accounts for their wipes), so its memory is released here: the finished changes
    /// then grow while the multi-version memory shrinks, instead of both being held at once.
    pub(crate) fn final_accounts(&self, shard: usize, out: &mut Vec<FinalAccount>) {
        if self.any_wipe.load(Ordering::Acquire) {
            self.collect_final_accounts(&self.accounts.shards[shard].read(), out);
        } else {
            let taken = std::mem::take(&mut *self.accounts.shards[shard].write());
            self.collect_final_accounts(&taken, out);
        }
    }

    fn collect_final_accounts(
        &self,
        accounts: &HashMap<Address, AccountVersions>,
        out: &mut Vec<FinalAccount>,
    ) {
        out.reserve(accounts.len());
        for (address, versions) in accounts {
            if versions.writes.is_empty() && versions.wipes.is_empty() {
                continue;
            }
            let value = match self.fold(versions, TxIdx::MAX) {
                FoldStart::At(start, from) => {
                    FinalValue::Known(self.credits_onto(versions, start, from, TxIdx::MAX).0)
                }
                FoldStart::Base => FinalValue::CreditsOnBase(
                    versions
                        .writes
                        .0
                        .iter()
                        .filter_map(|(_, write)| match write {
                            AccountWrite::Credit(amount) => Some(*amount),
                            AccountWrite::Absolute(_) => None,
                        })
                        .collect(),
                ),
            };
            out.push(FinalAccount {
                address: *address,
                value,
                last_wipe: versions.wipes.last().map(|(i, _)| *i),
                base: versions.base.get(),
            });
        }
    }

    /// Applies credits with this block's EIP-161 rules.
    pub(crate) fn apply_credits(
        &self,
        value: Option<AccountInfo>,
        credits: &[U256],
    ) -> Option<AccountInfo> {
        apply_credits_in_order(value, credits.iter().copied(), self.spurious_dragon)
    }

    /// The final value of every slot of storage shard `shard` written by a committed
    /// transaction after its account's last wipe: `(address, slot, value)`.
    ///
    /// Nothing reads a storage shard afterwards: its memory is released here.
    pub(crate) fn final_slots(&self, shard: usize, out: &mut Vec<(Address, U256, U256)>) {
        let taken = std::mem::take(&mut *self.storage.shards[shard].write());
        out.reserve(taken.len());
        for ((address, slot), versions) in taken.iter() {
            let Some((index, value)) = versions.last() else { continue };
            if self.last_wipe_below(*address, TxIdx::MAX).is_none_or(|wipe| *index >= wipe) {
                out.push((*address, *slot, *value));
            }
        }
    }
}

/// An account's final value, or how to get it.
#[derive(Debug)]
pub(crate) enum FinalValue {
    /// Known from the writes.
    Known(Option<AccountInfo>),
    /// These credits, in order, on the pre-block value (none: only wiped, the pre-block value).
    CreditsOnBase(SmallVec<[U256; 2]>),
}

/// An account's final state after every transaction committed.
#[derive(Debug)]
pub(crate) struct FinalAccount {
    pub(crate) address: Address,
    /// The final value.
    pub(crate) value: FinalValue,
    /// The last transaction that wiped its storage.
    pub(crate) last_wipe: Option<TxIdx>,
    /// The pre-block value, if it was fetched during the block.
    pub(crate) base: Option<Option<AccountInfo>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use revm::primitives::KECCAK_EMPTY;

    fn account(balance: u64, nonce: u64) -> AccountInfo {
        AccountInfo { balance: U256::from(balance), nonce, ..Default::default() }
    }

    fn address(byte: u8) -> Address {
        Address::repeat_byte(byte)
    }

    fn base(value: Option<AccountInfo>) -> impl FnOnce() -> Result<Option<AccountInfo>, ()> {
        move || Ok(value)
    }

    #[test]
    fn galloping_search_agrees_with_binary_search() {
        for len in 0..40 {
            // Indices 0, 3, 6, ...: every `tx` below, at and between them, and past the end.
            let versions: Vec<(TxIdx, ())> = (0..len).map(|i| (i * 3, ())).collect();
            for tx in 0..len * 3 + 2 {
                assert_eq!(
                    versions_below(&versions, tx),
                    versions.partition_point(|(i, _)| *i < tx),
                    "{len} versions, tx {tx}"
                );
            }
        }
    }

    #[test]
    fn credit_touch_semantics_follow_eip161() {
        // After Spurious Dragon a zero credit to an empty account deletes it...
        assert_eq!(apply_credit(Some(AccountInfo::default()), U256::ZERO, true), None);
        assert_eq!(apply_credit(None, U256::ZERO, true), None);
        // ...before it, it creates the account.
        let created = apply_credit(None, U256::ZERO, false).expect("created");
        assert!(created.is_empty());
        assert_eq!(created.code_hash, KECCAK_EMPTY);
        // A positive credit always leaves an account with that balance.
        assert_eq!(apply_credit(None, U256::from(5), true).map(|a| a.balance), Some(U256::from(5)));
    }

    #[test]
    fn a_run_of_credits_equals_crediting_one_by_one() {
        let empty_with_code_field =
            AccountInfo { code: Some(revm::bytecode::Bytecode::default()), ..Default::default() };
        let starts = [
            None,
            Some(AccountInfo::default()),
            Some(empty_with_code_field),
            Some(account(3, 0)),
            Some(account(0, 2)),
        ];
        let runs: [&[u64]; 6] = [&[], &[0], &[0, 0], &[0, 5, 0], &[5, 0, 7], &[0, 0, 9]];
        for spurious_dragon in [false, true] {
            for start in &starts {
                for run in runs {
                    let credits = run.iter().map(|amount| U256::from(*amount));
                    let one_by_one = credits.clone().fold(start.clone(), |value, amount| {
                        apply_credit(value, amount, spurious_dragon)
                    });
                    let at_once = apply_credits_in_order(start.clone(), credits, spurious_dragon);
                    let context = format!("{start:?} + {run:?}, spurious dragon {spurious_dragon}");
                    assert_eq!(at_once, one_by_one, "{context}");
                    // Equality of accounts ignores the code field: compare it too.
                    assert_eq!(
                        at_once.map(|info| info.code.is_some()),
                        one_by_one.map(|info| info.code.is_some()),
                        "{context}"
                    );
                }
            }
        }
        let near_max = U256::MAX - U256::from(1);
        let saturated =
            apply_credits_in_order(Some(account(0, 1)), [near_max, U256::from(5)], true);
        assert_eq!(saturated.unwrap().balance, U256::MAX, "saturates like one by one");
    }

    #[test]
    fn a_reader_leaves_its_fold_until_a_version_below_it_changes() {
        let mv = MvMemory::new(true);
        let a = address(6);
        let mut written_by = vec![Vec::new(); 30];
        let credit = |tx: usize, amount: u64, written: &mut Vec<Location>| {
            let mut writes = WriteSet::default();
            writes.accounts.push((a, AccountWrite::Credit(U256::from(amount))));
            mv.publish(tx, &mut writes, written, &mut Vec::new());
        };
        for (tx, written) in written_by.iter_mut().enumerate() {
            credit(tx, 1, written);
        }
        let read = |tx| mv.read_account(a, tx, base(Some(account(100, 1)))).unwrap().0.unwrap();
        let left = |mv: &MvMemory| {
            mv.accounts.shards[account_shard(&a)].read()[&a].folded.as_deref().map(|(at, _)| *at)
        };
        assert_eq!(read(20).balance, U256::from(120));
        assert_eq!(left(&mv), Some(19), "20 credits folded: the fold is left behind");
        // Later readers start from it and see the same as a full fold.
        assert_eq!(read(25).balance, U256::from(125));
        assert_eq!(read(10).balance, U256::from(110), "a reader below the fold ignores it");
        // A re-execution below the fold changes its credit: the fold is dropped.
        credit(12, 50, &mut written_by[12]);
        assert_eq!(left(&mv), None);
        assert_eq!(read(25).balance, U256::from(174));
        // A change above it keeps it.
        assert_eq!(left(&mv), Some(24));
        credit(27, 2, &mut written_by[27]);
        assert_eq!(left(&mv), Some(24));
        assert_eq!(read(30).balance, U256::from(180));
        // Retracting a credit below it drops it as well.
        mv.retract_all(3, &mut written_by[3]);
        assert_eq!(left(&mv), None);
        assert_eq!(read(30).balance, U256::from(179));
    }

    #[test]
    fn reads_fold_credits_above_the_last_absolute_write() {
        let mv = MvMemory::new(true);
        let a = address(1);
        let mut written = Vec::new();
        let mut writes = WriteSet::default();
        writes.accounts.push((a, AccountWrite::Credit(U256::from(10))));
        mv.publish(2, &mut writes, &mut written, &mut Vec::new());
        writes.accounts[0].1 = AccountWrite::Absolute(Some(Box::new(account(100, 1))));
        mv.publish(4, &mut writes, &mut Vec::new(), &mut Vec::new());
        writes.accounts[0].1 = AccountWrite::Credit(U256::from(7));
        mv.publish(6, &mut writes, &mut Vec::new(), &mut Vec::new());

        let read = |tx| mv.read_account(a, tx, base(Some(account(50, 0)))).unwrap().0;
        assert_eq!(read(0).unwrap().balance, U256::from(50), "below every write: the base");
        assert_eq!(read(3).unwrap().balance, U256::from(60), "base plus the credit at 2");
        assert_eq!(read(5).unwrap().balance, U256::from(100), "the absolute write at 4");
        assert_eq!(read(9).unwrap().balance, U256::from(107), "absolute plus the credit at 6");
        assert_eq!(read(9).unwrap().nonce, 1);
    }

    #[test]
    fn committed_value_shortcuts_the_fold_and_matches_it() {
        let mv = MvMemory::new(true);
        let a = address(2);
        let mut written_by = vec![Vec::new(); 20];
        for (tx, written) in written_by.iter_mut().enumerate() {
            let mut writes = WriteSet::default();
            writes.accounts.push((a, AccountWrite::Credit(U256::from(tx as u64 + 1))));
            let mut credited = Vec::new();
            mv.publish(tx, &mut writes, written, &mut credited);
            let expected: &[Address] = if tx + 1 >= CHECKPOINT_EVERY { &[a] } else { &[] };
            assert_eq!(credited, expected, "tx {tx}: a checkpoint candidate from the 8th credit");
        }
        let unfolded = mv.read_account(a, 20, base(Some(account(0, 1)))).unwrap().0;
        for (tx, written) in written_by.iter().enumerate() {
            assert_eq!(written, &[Location::Account(a)]);
            mv.commit(tx, &[a], |_| Ok::<_, ()>(Some(account(0, 1)))).unwrap();
        }
        // The base closure must not be needed once everything is committed.
        let folded = mv.read_account(a, 20, || Err(())).unwrap().0;
        assert_eq!(folded, unfolded);
        assert_eq!(folded.clone().unwrap().balance, U256::from((1..=20).sum::<u64>()));
        let mut finals = Vec::new();
        mv.final_accounts(account_shard(&a), &mut finals);
        assert_eq!(finals.len(), 1);
        assert!(
            matches!(&finals[0].value, FinalValue::Known(v) if *v == folded),
            "the final value folds every credit"
        );
    }

    #[test]
    fn slot_reads_take_the_newer_of_write_and_wipe() {
        let mv = MvMemory::new(true);
        let a = address(3);
        let slot = U256::from(9);
        let mut writes = WriteSet::default();
        writes.storage.push((a, slot, U256::from(1)));
        mv.publish(1, &mut writes, &mut Vec::new(), &mut Vec::new());
        let mut wipe = WriteSet::default();
        wipe.wipes.push(a);
        wipe.accounts.push((a, AccountWrite::Absolute(None)));
        mv.publish(3, &mut wipe, &mut Vec::new(), &mut Vec::new());
        let mut redeploy = WriteSet::default();
        redeploy.wipes.push(a);
        redeploy.storage.push((a, slot, U256::from(2)));
        mv.publish(5, &mut redeploy, &mut Vec::new(), &mut Vec::new());

        let value = |tx| match mv.read_slot(a, slot, tx) {
            SlotVersion::Written(v) => Some(v),
            SlotVersion::Base => None,
        };
        assert_eq!(value(1), None, "nothing below 1: pre-block storage");
        assert_eq!(value(2), Some(U256::from(1)));
        assert_eq!(value(4), Some(U256::ZERO), "wiped at 3");
        assert_eq!(value(6), Some(U256::from(2)), "written after the wipe at 5, same transaction");
        assert!(mv.wiped_below(a, 4));
        assert!(!mv.wiped_below(a, 3));
    }

    #[test]
    fn republishing_retracts_locations_no_longer_written() {
        let mv = MvMemory::new(true);
        let (a, b) = (address(4), address(5));
        let mut written = Vec::new();
        let mut first = WriteSet::default();
        first.accounts.push((a, AccountWrite::Absolute(Some(Box::new(account(1, 1))))));
        first.storage.push((b, U256::ZERO, U256::from(3)));
        mv.publish(2, &mut first, &mut written, &mut Vec::new());
        let mut second = WriteSet::default();
        second.accounts.push((a, AccountWrite::Absolute(Some(Box::new(account(2, 1))))));
        mv.publish(2, &mut second, &mut written, &mut Vec::new());
        assert_eq!(written, vec![Location::Account(a)]);
        assert!(matches!(mv.read_slot(b, U256::ZERO, 3), SlotVersion::Base));
        assert_eq!(mv.read_account(a, 3, base(None)).unwrap().0.unwrap().balance, U256::from(2));
        mv.retract_all(2, &mut written);
        assert_eq!(mv.read_account(a, 3, base(None)).unwrap(), (None, true));
        let mut accounts = Vec::new();
        let mut slots = Vec::new();
        for shard in 0..MvMemory::SHARDS {
            mv.final_accounts(shard, &mut accounts);
            mv.final_slots(shard, &mut slots);
        }
        assert!(accounts.is_empty(), "every write was retracted");
        assert!(slots.is_empty());
    }
}
