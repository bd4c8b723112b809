//! The sequential engine: plain revm, one transaction after the other. This is the oracle every
//! other engine is checked against, so it stays as close to revm's own usage as possible.

use crate::{
    block::{Block, BlockHashes},
    error::ExecutionError,
    evm::{
        cfg_env, changed_slots, classify_error, AccountEffect, BlockGas, DbError, Eip7610,
        StorageProbe,
    },
    fingerprint::fingerprint,
    outcome::{BlockOutput, BlockTrace, EngineKind, ExecutionStats, FallbackReason, TxResult},
    panic_message, ExecuteOptions,
};
use alloy_primitives::{
    map::{Entry, HashMap},
    Address, B256, U256,
};
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use revm::{
    bytecode::Bytecode,
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::result::{EVMError, InvalidTransaction},
    database_interface::{Database, DatabaseCommit},
    handler::{EthFrame, Handler, MainnetEvm, MainnetHandler},
    interpreter::interpreter::EthInterpreter,
    primitives::{AddressMap, KECCAK_EMPTY},
    state::{Account, AccountInfo},
    Context, ExecuteEvm, Journal, MainBuilder,
};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    time::{Duration, Instant},
};

/// Storage written during the block for one account.
#[derive(Debug, Default)]
pub(crate) struct StorageOverlay {
    /// The account's storage was wiped: unlisted slots read as zero.
    pub(crate) cleared: bool,
    /// Slots written (after the wipe, if any).
    pub(crate) slots: HashMap<U256, U256>,
}

/// An account the block has loaded or written.
#[derive(Debug)]
pub(crate) struct Loaded<M> {
    /// Its value now: the value it was loaded with until a transaction writes it.
    pub(crate) now: Option<AccountInfo>,
    /// What is known of its value before the block.
    before: Before,
    /// A transaction wrote it.
    pub(crate) written: bool,
    /// What the overlay's [`Tracking`] keeps about who read and wrote it.
    pub(crate) mark: M,
}

/// What an [`OverlayDb`] records beyond the values. The sequential engine records nothing
/// ([`Untracked`]: every hook compiles away); a lane of the lanes engine records which of its
/// transactions read and wrote each location, and how to undo its writes (`lanes/log.rs`).
pub(crate) trait Tracking: std::fmt::Debug {
    /// What is kept in the overlay's entry of each account.
    type Mark: std::fmt::Debug;
    /// Whether anything is recorded. When it is, accounts the source does not have are kept
    /// on load too (a lane must know every account it read).
    const ON: bool;
    /// A transaction starts.
    fn begin(&mut self, tx: usize);
    /// The mark of `address`, first loaded by the current transaction.
    fn first_read(&mut self, address: &Address) -> Self::Mark;
    /// The current transaction loaded an account loaded before.
    fn read(&mut self, address: &Address, mark: &mut Self::Mark);
    /// The current transaction changed an account's value (or wiped its storage); `old` is the
    /// value before and whether it had been written.
    fn account_written(
        &mut self,
        address: Address,
        mark: &mut Self::Mark,
        old: Option<AccountInfo>,
        was_written: bool,
    );
    /// The current transaction wiped an account's storage; `old` is the overlay's storage of
    /// it before.
    fn storage_wiped(&mut self, address: Address, old: Option<StorageOverlay>);
    /// The current transaction read a slot.
    fn slot_read(&mut self, address: Address, slot: U256);
    /// The current transaction wrote a slot; `old` is the overlay's value before.
    fn slot_written(&mut self, address: Address, slot: U256, old: Option<U256>);
    /// The current transaction asked whether an account has storage (EIP-7610); `held`:
    /// whether the overlay held storage of it then.
    fn storage_probed(&mut self, address: Address, held: bool);
}

/// The sequential engine's overlay records nothing.
#[derive(Debug, Default)]
pub(crate) struct Untracked;

impl Tracking for Untracked {
    type Mark = ();
    const ON: bool = false;
    #[inline(always)]
    fn begin(&mut self, _: usize) {}
    #[inline(always)]
    fn first_read(&mut self, _: &Address) {}
    #[inline(always)]
    fn read(&mut self, _: &Address, _: &mut ()) {}
    #[inline(always)]
    fn account_written(&mut self, _: Address, _: &mut (), _: Option<AccountInfo>, _: bool) {}
    #[inline(always)]
    fn storage_wiped(&mut self, _: Address, _: Option<StorageOverlay>) {}
    #[inline(always)]
    fn slot_read(&mut self, _: Address, _: U256) {}
    #[inline(always)]
    fn slot_written(&mut self, _: Address, _: U256, _: Option<U256>) {}
    #[inline(always)]
    fn storage_probed(&mut self, _: Address, _: bool) {}
}

/// What the overlay knows of an account's value before the block, without a second lookup
/// in the source.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Nothing: finalisation looks it up.
    Unknown,
    /// The source does not have the account.
    Absent,
    /// The source has it: the fingerprint of its [`AccountState`], and whether it had code.
    /// A different fingerprint now proves the account changed; an equal one is confirmed
    /// with a lookup (a collision cannot make the changes wrong, only slower).
    Existing { fingerprint: u64, had_code: bool },
}

impl Before {
    fn existing(state: &AccountState) -> Self {
        Self::Existing {
            fingerprint: fingerprint_of(state),
            had_code: state.code_hash != KECCAK_EMPTY,
        }
    }
}

/// The fingerprint of an account's plain value.
fn fingerprint_of(state: &AccountState) -> u64 {
    fingerprint(
        0,
        &[
            &state.balance.to_le_bytes::<32>(),
            &state.nonce.to_le_bytes(),
            state.code_hash.as_slice(),
        ],
    )
}

/// A revm database: the block's writes so far over the read-only pre-state.
///
/// It keeps every account it loads from the source, with a fingerprint of the value it had
/// there ([`Before`]): the final comparison with the pre-block state then needs no second
/// lookup per account in most cases (a cold lookup in the source took ~450 ns per account of
/// a gigagas transfer block, a sixth of the block's time), as the parallel engine's
/// multi-version entries keep the pre-block value too. A fingerprint instead of the value
/// itself: 72 more bytes per entry of the overlay's table cost a block of transfers to new
/// accounts 7% in fresh memory.
#[derive(Debug)]
pub(crate) struct OverlayDb<'a, S: ?Sized, T: Tracking = Untracked> {
    source: &'a S,
    hashes: &'a BlockHashes,
    pub(crate) accounts: HashMap<Address, Loaded<T::Mark>>,
    pub(crate) storage: HashMap<Address, StorageOverlay>,
    codes: HashMap<B256, Bytecode>,
    /// Transactions that wrote a storage slot an earlier transaction had written (the
    /// policy's probe reads it as a sign of one hot slot chaining the block).
    rewriting_txs: usize,
    /// What else is recorded.
    pub(crate) track: T,
}

impl<S: StateSource + ?Sized, T: Tracking> Database for OverlayDb<'_, S, T> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let entry = match self.accounts.entry(address) {
            Entry::Occupied(mut entry) => {
                let loaded = entry.get_mut();
                self.track.read(&address, &mut loaded.mark);
                return Ok(loaded.now.clone());
            }
            Entry::Vacant(entry) => entry,
        };
        let mut account = self.source.account(address).map_err(DbError::Source)?;
        if let Some(info) = account.as_mut() {
            if info.code.is_none() && info.code_hash != KECCAK_EMPTY {
                info.code = Some(self.source.code(info.code_hash).map_err(DbError::Source)?);
            }
        }
        // Kept when it exists: an account the source does not have needs no second lookup
        // (revm flags it as loaded as not existing, see `commit`), and inserting those on load
        // cost a block of transfers to new accounts 7%.
        if let Some(info) = &account {
            let before = Before::existing(&AccountState::from(info));
            let mark = self.track.first_read(&address);
            entry.insert(Loaded { now: account.clone(), before, written: false, mark });
        } else if T::ON {
            let mark = self.track.first_read(&address);
            entry.insert(Loaded { now: None, before: Before::Absent, written: false, mark });
        }
        Ok(account)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        match self.codes.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.source.code(code_hash).map_err(DbError::Source),
        }
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        self.track.slot_read(address, index);
        if let Some(overlay) = self.storage.get(&address) {
            if let Some(value) = overlay.slots.get(&index) {
                return Ok(*value);
            }
            if overlay.cleared {
                return Ok(U256::ZERO);
            }
        }
        self.source.storage(address, index).map_err(DbError::Source)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.hashes.get(number).ok_or(DbError::MissingBlockHash(number))
    }
}

impl<S: StateSource + ?Sized, T: Tracking> DatabaseCommit for OverlayDb<'_, S, T> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        // Whether this transaction wrote a slot an earlier one had written.
        let mut rewrote = false;
        for (address, account) in &changes {
            match AccountEffect::of(account) {
                None => {}
                Some(AccountEffect::Destroyed) => {
                    self.write(*address, account, None, true);
                    self.wipe(*address, Default::default());
                }
                Some(AccountEffect::Created(info)) => {
                    self.remember_code(info);
                    self.write(*address, account, Some(info.clone()), true);
                    let slots: HashMap<U256, U256> = changed_slots(account).collect();
                    // Undone newest first: the slots before the wipe.
                    let written: Vec<U256> =
                        if T::ON { slots.keys().copied().collect() } else { Vec::new() };
                    self.wipe(*address, slots);
                    for slot in written {
                        self.track.slot_written(*address, slot, None);
                    }
                }
                Some(AccountEffect::Changed(info)) => {
                    self.remember_code(info);
                    self.write(*address, account, Some(info.clone()), false);
                    // Only accounts whose slots changed get a storage entry: an empty entry
                    // for every account written (every sender) cost a hash insert per
                    // account and a removal at the end, a fifth of a block of transfers.
                    let mut slots = changed_slots(account).peekable();
                    if slots.peek().is_some() {
                        let overlay = self.storage.entry(*address).or_default();
                        for (slot, value) in slots {
                            let old = overlay.slots.insert(slot, value);
                            rewrote |= old.is_some();
                            self.track.slot_written(*address, slot, old);
                        }
                    }
                }
            }
        }
        self.rewriting_txs += usize::from(rewrote);
    }
}

impl<'a, S: StateSource + ?Sized> OverlayDb<'a, S> {
    /// An empty overlay on `source`, sized for about `accounts` written accounts.
    pub(crate) fn new(source: &'a S, hashes: &'a BlockHashes, accounts: usize) -> Self {
        Self::tracked(source, hashes, accounts, Untracked)
    }
}

impl<'a, S: StateSource + ?Sized, T: Tracking> OverlayDb<'a, S, T> {
    /// An empty overlay on `source` that records with `track`, sized for about `accounts`
    /// written accounts.
    pub(crate) fn tracked(
        source: &'a S,
        hashes: &'a BlockHashes,
        accounts: usize,
        track: T,
    ) -> Self {
        Self {
            source,
            hashes,
            accounts: HashMap::with_capacity_and_hasher(accounts, Default::default()),
            storage: HashMap::default(),
            rewriting_txs: 0,
            codes: HashMap::default(),
            track,
        }
    }

    /// The state the overlay reads under its writes.
    pub(crate) fn source(&self) -> &'a S {
        self.source
    }

    /// The overlay's tables, without the source: what [`OverlayDb::absorb`] takes.
    pub(crate) fn into_parts(self) -> OverlayParts<T::Mark> {
        OverlayParts {
            accounts: self.accounts,
            storage: self.storage,
            codes: self.codes,
            rewriting_txs: self.rewriting_txs,
        }
    }

    /// What the transactions wrote: each written account's value, and per account the storage
    /// written (and whether it was wiped first).
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_writes(
        self,
    ) -> (Vec<(Address, Option<AccountInfo>)>, HashMap<Address, StorageOverlay>) {
        let written = self
            .accounts
            .into_iter()
            .filter(|(_, account)| account.written)
            .map(|(address, account)| (address, account.now))
            .collect();
        (written, self.storage)
    }

    /// An overlay on `source` with the tables of another (`parts`), recording with `track`:
    /// the other overlay's values must be relative to `source` (it read `source`, or a state
    /// that differs from it nowhere `parts` lists).
    pub(crate) fn from_parts(
        source: &'a S,
        hashes: &'a BlockHashes,
        parts: OverlayParts<T::Mark>,
        track: T,
    ) -> Self {
        let OverlayParts { accounts, storage, codes, rewriting_txs } = parts;
        Self { source, hashes, accounts, storage, codes, rewriting_txs, track }
    }

    /// Sets the value of `address`, an account the overlay holds, to `now`, and what it was
    /// before to `before` (what the overlay's source has): a split round of the lanes engine
    /// settles its sender so (`lanes/split.rs`).
    pub(crate) fn settle_account(
        &mut self,
        address: &Address,
        now: AccountInfo,
        before: &AccountInfo,
    ) {
        if let Some(loaded) = self.accounts.get_mut(address) {
            loaded.now = Some(now);
            loaded.before = Before::existing(&AccountState::from(before));
        }
    }

    /// Transactions so far that wrote a storage slot an earlier one had written.
    pub(crate) fn rewriting_txs(&self) -> usize {
        self.rewriting_txs
    }

    /// Records what a transaction left in `address` (`account`, its journal entry), and
    /// whether it wiped the account's storage.
    fn write(
        &mut self,
        address: Address,
        account: &Account,
        now: Option<AccountInfo>,
        wiped: bool,
    ) {
        let track = &mut self.track;
        let entry = self.accounts.entry(address).or_insert_with(|| Loaded {
            now: None,
            // Not in the overlay and loaded as not existing: the source does not have it.
            before: if account.is_loaded_as_not_existing() {
                Before::Absent
            } else {
                Before::Unknown
            },
            written: false,
            mark: track.first_read(&address),
        });
        if T::ON && (wiped || !same_value(entry.now.as_ref(), now.as_ref())) {
            let old = std::mem::replace(&mut entry.now, now);
            track.account_written(address, &mut entry.mark, old, entry.written);
        } else {
            entry.now = now;
        }
        entry.written = true;
    }

    /// Wipes the storage of `address`, leaving `slots` in it.
    fn wipe(&mut self, address: Address, slots: HashMap<U256, U256>) {
        let now = StorageOverlay { cleared: true, slots };
        let old = match self.storage.entry(address) {
            Entry::Occupied(mut entry) => Some(std::mem::replace(entry.get_mut(), now)),
            Entry::Vacant(entry) => {
                entry.insert(now);
                None
            }
        };
        self.track.storage_wiped(address, old);
    }

    fn remember_code(&mut self, info: &AccountInfo) {
        if let Some(code) = &info.code {
            if info.code_hash != KECCAK_EMPTY {
                self.codes.entry(info.code_hash).or_insert_with(|| code.clone());
            }
        }
    }

    /// The canonical state changes of everything committed so far: compared with the
    /// pre-state account by account, then sorted once. (Sorting in buckets of the leading
    /// address bits, each in the core's cache, cut the sort of a gigagas transfer block's
    /// 95,000 changes from 7.2 to 4.4 ms, but filling 256 buckets cost more than it saved.)
    pub(crate) fn into_changes(self) -> Result<StateChanges, ExecutionError> {
        Ok(StateChanges::from_sorted(self.into_sorted_changes()?))
    }

    /// [`Self::into_changes`] as a vector ordered by address.
    pub(crate) fn into_sorted_changes(
        mut self,
    ) -> Result<Vec<(Address, AccountChange)>, ExecutionError> {
        let mut changes = Vec::with_capacity(self.accounts.len());
        for (address, account) in std::mem::take(&mut self.accounts) {
            if !account.written {
                continue;
            }
            let info = account.now;
            let storage = if self.storage.is_empty() {
                StorageOverlay::default()
            } else {
                self.storage.remove(&address).unwrap_or_default()
            };
            let code = info.as_ref().and_then(|i| i.code.clone()).filter(|c| !c.is_empty());
            let change = AccountChange {
                info: info.as_ref().map(AccountState::from),
                code,
                storage_cleared: storage.cleared,
                storage: storage.slots.into_iter().collect(),
            };
            let source = self.source;
            let canonical = match (account.before, change.info) {
                (Before::Absent, _) => change.canonical_against(None, source, address),
                // Gone, or different: changed. Its code stays only when it is new, and it is
                // when the account had none before (unless it has none now either: then
                // `code` is already `None`).
                (Before::Existing { fingerprint, had_code }, now)
                    if now.is_none_or(|now| fingerprint_of(&now) != fingerprint)
                        && !(had_code && change.code.is_some()) =>
                {
                    change.canonical_changed(source, address).map(Some)
                }
                _ => change.canonical(source, address),
            }
            .map_err(|source| ExecutionError::StateAfterBlock { source })?;
            changes.extend(canonical.map(|change| (address, change)));
        }
        sort_by_address(&mut changes);
        Ok(changes)
    }
}

/// The tables of an overlay, without its source.
#[derive(Debug)]
pub(crate) struct OverlayParts<M> {
    pub(crate) accounts: HashMap<Address, Loaded<M>>,
    pub(crate) storage: HashMap<Address, StorageOverlay>,
    codes: HashMap<B256, Bytecode>,
    rewriting_txs: usize,
}

impl<M> OverlayParts<M> {
    /// Accounts written.
    pub(crate) fn written(&self) -> usize {
        self.accounts.values().filter(|loaded| loaded.written).count()
    }
}

impl<S: StateSource + ?Sized> OverlayDb<'_, S> {
    /// Takes out of a lane's tables (`lane`: an overlay that read this one's state) what must
    /// join this overlay before the rest of `lane` can be finalised on its own against the
    /// source: the lane's entries of the accounts this overlay holds, and of `also`; of their
    /// storage, the slots this overlay wrote too (all of it when either side wiped it). Each
    /// account whose other slots stay in `lane` keeps an entry there valued as before the
    /// block, so that those slots are finalised with the lane's (a token's balances, written
    /// by a probe and then by every lane: moving them all would finalise them on one core).
    pub(crate) fn claim<M: Copy>(
        &self,
        lane: &mut OverlayParts<M>,
        also: &Address,
    ) -> Result<OverlayParts<M>, ExecutionError> {
        let mut taken = OverlayParts {
            accounts: HashMap::default(),
            storage: HashMap::default(),
            codes: HashMap::default(),
            rewriting_txs: 0,
        };
        // Each address once: one the lane keeps slots of gets a new entry below, which a second
        // pass over the address would take too.
        let storage_only = self.storage.keys().filter(|a| !self.accounts.contains_key(*a));
        let beside =
            (!self.accounts.contains_key(also) && !self.storage.contains_key(also)).then_some(also);
        for address in self.accounts.keys().chain(storage_only).chain(beside) {
            if let Some(account) = lane.accounts.remove(address) {
                taken.accounts.insert(*address, account);
            }
            let Some(theirs) = lane.storage.get_mut(address) else { continue };
            let ours = self.storage.get(address);
            if address == also || theirs.cleared || ours.is_some_and(|ours| ours.cleared) {
                taken.storage.extend(lane.storage.remove_entry(address));
                continue;
            }
            let slots: HashMap<U256, U256> = ours
                .iter()
                .flat_map(|ours| ours.slots.keys())
                .filter_map(|slot| theirs.slots.remove_entry(slot))
                .collect();
            if theirs.slots.is_empty() {
                lane.storage.remove(address);
            } else if let Some(moved) = taken.accounts.get(address) {
                // The lane keeps slots of an account whose entry moved: it lists the account
                // as before the block, which the merge of the lanes' changes reads as "not
                // changed here".
                let before = self
                    .source
                    .account(*address)
                    .map_err(|source| ExecutionError::StateAfterBlock { source })?;
                let before_state = before.as_ref().map(AccountState::from);
                let entry = Loaded {
                    before: before_state.as_ref().map_or(Before::Absent, Before::existing),
                    now: before,
                    written: true,
                    mark: moved.mark,
                };
                lane.accounts.insert(*address, entry);
            }
            if !slots.is_empty() {
                taken.storage.insert(*address, StorageOverlay { cleared: false, slots });
            }
        }
        Ok(taken)
    }

    /// Makes room for `accounts` more accounts.
    pub(crate) fn reserve(&mut self, accounts: usize) {
        self.accounts.reserve(accounts);
    }

    /// Lays the writes of `later` over this overlay's: the tables of an overlay that read this
    /// one's state (the lanes engine's lanes, each over the state the earlier rounds left;
    /// lanes of one round absorbed one after the other never wrote the same location). An
    /// account's value is taken when `wrote_value` says `later` changed it; what this overlay
    /// knows of its value before the block stays.
    pub(crate) fn absorb<M>(&mut self, later: OverlayParts<M>, wrote_value: impl Fn(&M) -> bool) {
        for (address, theirs) in later.accounts {
            if !theirs.written {
                continue;
            }
            let changed = wrote_value(&theirs.mark);
            match self.accounts.entry(address) {
                Entry::Vacant(entry) => {
                    let Loaded { now, before, written, .. } = theirs;
                    entry.insert(Loaded { now, before, written, mark: () });
                }
                Entry::Occupied(mut entry) => {
                    let ours = entry.get_mut();
                    if changed {
                        ours.now = theirs.now;
                    }
                    ours.written = true;
                }
            }
        }
        for (address, theirs) in later.storage {
            match self.storage.entry(address) {
                Entry::Vacant(entry) => {
                    entry.insert(theirs);
                }
                Entry::Occupied(mut entry) if theirs.cleared => {
                    entry.insert(theirs);
                }
                Entry::Occupied(mut entry) => entry.get_mut().slots.extend(theirs.slots),
            }
        }
        for (hash, code) in later.codes {
            self.codes.entry(hash).or_insert(code);
        }
        self.rewriting_txs += later.rewriting_txs;
    }

    /// The account's value now, if the overlay has it.
    pub(crate) fn loaded(&self, address: &Address) -> Option<&Option<AccountInfo>> {
        self.accounts.get(address).map(|loaded| &loaded.now)
    }

    /// The code of `hash`, if a transaction of the overlay deployed it.
    pub(crate) fn deployed_code(&self, hash: &B256) -> Option<&Bytecode> {
        self.codes.get(hash)
    }

    /// The slot's value now, if the overlay knows it without the source: `Some(Some(v))`
    /// written, `Some(None)` wiped (zero), `None` ask the source.
    pub(crate) fn written_slot(&self, address: &Address, slot: &U256) -> Option<Option<U256>> {
        let overlay = self.storage.get(address)?;
        match overlay.slots.get(slot) {
            Some(value) => Some(Some(*value)),
            None => overlay.cleared.then_some(None),
        }
    }

    /// Whether the account has storage, as [`StorageProbe::has_storage`] sees it, when the
    /// overlay alone can tell.
    pub(crate) fn written_storage(&self, address: &Address) -> Option<bool> {
        let overlay = self.storage.get(address)?;
        if overlay.slots.values().any(|v| !v.is_zero()) {
            return Some(true);
        }
        overlay.cleared.then_some(false)
    }
}

/// Sorts account changes by address: the addresses sorted with their positions (24 bytes
/// each), then the changes (150 bytes each) moved into place along the permutation's cycles,
/// about once each, where a sort of the changes themselves moves each of them log n times.
pub(crate) fn sort_by_address(changes: &mut [(Address, AccountChange)]) {
    let mut order: Vec<(Address, u32)> =
        changes.iter().enumerate().map(|(i, (address, _))| (*address, i as u32)).collect();
    order.sort_unstable();
    // `from[k]`: where the change that belongs at `k` is now.
    let mut from: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..from.len() {
        let mut at = start;
        loop {
            let source = from[at] as usize;
            from[at] = at as u32;
            if source == start || source == at {
                break;
            }
            changes.swap(at, source);
            at = source;
        }
    }
}

/// Whether two values of an account are the same (balance, nonce, code), or both absent.
fn same_value(a: Option<&AccountInfo>, b: Option<&AccountInfo>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.balance == b.balance && a.nonce == b.nonce && a.code_hash == b.code_hash
        }
        _ => false,
    }
}

/// revm's mainnet handler over revm's mainnet EVM (with EIP-7610).
type SeqHandler<'a, S, T> = MainnetHandler<
    Eip7610<MainnetEvm<Context<&'a BlockEnv, &'a TxEnv, CfgEnv, OverlayDb<'a, S, T>>>>,
    EVMError<DbError, InvalidTransaction>,
    EthFrame<EthInterpreter>,
>;

impl<S: StateSource + ?Sized, T: Tracking> StorageProbe for OverlayDb<'_, S, T> {
    fn has_storage(&mut self, address: Address) -> Result<bool, DbError> {
        self.track.storage_probed(address, self.storage.contains_key(&address));
        if let Some(overlay) = self.storage.get(&address) {
            if overlay.slots.values().any(|v| !v.is_zero()) {
                return Ok(true);
            }
            if overlay.cleared {
                return Ok(false);
            }
        }
        self.source.has_storage(address).map_err(DbError::Source)
    }
}

/// Executes `block` on `source` with plain revm, one transaction after the other.
pub fn execute_sequential<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
) -> Result<BlockOutput, ExecutionError> {
    execute_sequential_with(block, source, ExecuteOptions::default())
}

/// [`execute_sequential`] with options (a per-transaction time trace).
pub fn execute_sequential_with<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    execute_sequential_because(block, source, options, None)
}

/// [`execute_sequential_with`], for the adaptive policy's `fallback` reason when it has one
/// (in the statistics). The reason and the trace go into the output where it is built:
/// setting them on the returned output copied it again each time (callgrind, an empty block:
/// the sequential engine 1,839 instructions, the adaptive one 2,046, 139 of the difference
/// in `memcpy`; now 1,688 and 1,728).
pub(crate) fn execute_sequential_because<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    options: ExecuteOptions,
    fallback: Option<FallbackReason>,
) -> Result<BlockOutput, ExecutionError> {
    let mut tx_times = Vec::with_capacity(if options.trace { block.transactions.len() } else { 0 });
    let all = block.transactions.len();
    let prefix = Prefix::run(block, source, all, options.trace.then_some(&mut tx_times))?;
    let trace = options.trace.then(|| BlockTrace { tx_times, dependencies: Vec::new() });
    prefix.finish_with(block, fallback, trace)
}

/// A block's first transactions, run on the sequential engine: the whole block for the
/// sequential engine, the adaptive policy's timed probe ([`crate::probe`]) otherwise, which
/// either finishes the block here or hands it to the parallel engine.
#[derive(Debug)]
pub(crate) struct Prefix<'a, S: ?Sized, T: Tracking = Untracked> {
    /// The state after the prefix.
    pub(crate) db: OverlayDb<'a, S, T>,
    /// One result per transaction of the prefix.
    pub(crate) results: Vec<TxResult>,
    /// Gas and blob gas the prefix used.
    pub(crate) gas: BlockGas,
    /// Executions (invalid transactions are not executed).
    pub(crate) executions: usize,
    /// How long the prefix took.
    pub(crate) time: Duration,
}

impl<'a, S: StateSource + ?Sized> Prefix<'a, S> {
    /// Runs the first `len` transactions of `block` on `source` (with their times when
    /// `tx_times` is given).
    pub(crate) fn run(
        block: &'a Block,
        source: &'a S,
        len: usize,
        tx_times: Option<&mut Vec<Duration>>,
    ) -> Result<Self, ExecutionError> {
        // Sized like the parallel engine's tables, so that neither engine rehashes as it goes.
        Self::run_sized(block, source, len, tx_times, block.expected_writes().0)
    }

    /// [`Self::run`] with the overlay sized for about `accounts` written accounts.
    pub(crate) fn run_sized(
        block: &'a Block,
        source: &'a S,
        len: usize,
        tx_times: Option<&mut Vec<Duration>>,
        accounts: usize,
    ) -> Result<Self, ExecutionError> {
        let mut results: Vec<TxResult> = Vec::with_capacity(block.transactions.len());
        let mut gas = BlockGas::default();
        let mut executions = 0;
        let db = OverlayDb::new(source, &block.context.block_hashes, accounts);
        let started = Instant::now();
        let db = execute_in_order(
            block,
            cfg_env(&block.context),
            0..len.min(block.transactions.len()),
            db,
            &mut InOrder {
                gas: &mut gas,
                results: &mut results,
                executions: &mut executions,
                tx_times,
            },
        )?;
        Ok(Self { db, results, gas, executions, time: started.elapsed() })
    }
}

impl<'a, S: StateSource + ?Sized, T: Tracking> Prefix<'a, S, T> {
    /// Runs the rest of the block on the sequential engine and builds its output.
    pub(crate) fn finish(self, block: &'a Block) -> Result<BlockOutput, ExecutionError> {
        self.finish_with(block, None, None)
    }

    /// [`Self::finish`], the output's statistics giving `fallback` as the reason the block ran
    /// here, with `trace`.
    pub(crate) fn finish_with(
        self,
        block: &'a Block,
        fallback: Option<FallbackReason>,
        trace: Option<BlockTrace>,
    ) -> Result<BlockOutput, ExecutionError> {
        let Self { db, mut results, mut gas, mut executions, time } = self;
        let started = Instant::now();
        let db = execute_in_order(
            block,
            cfg_env(&block.context),
            results.len()..block.transactions.len(),
            db,
            &mut InOrder {
                gas: &mut gas,
                results: &mut results,
                executions: &mut executions,
                tx_times: None,
            },
        )?;
        let mut stats = ExecutionStats::new(EngineKind::Sequential);
        stats.executions = executions;
        stats.execute_time = time + started.elapsed();
        stats.fallback = fallback;
        let finalize = Instant::now();
        let changes = db.into_changes()?;
        stats.finalize_time = finalize.elapsed();
        let mut output = gas.output(results, changes, stats);
        output.trace = trace;
        Ok(output)
    }
}

/// Where [`execute_in_order`] keeps the block's running totals.
pub(crate) struct InOrder<'r> {
    /// Gas and blob gas used by the transactions before.
    pub(crate) gas: &'r mut BlockGas,
    /// One result per transaction, in block order.
    pub(crate) results: &'r mut Vec<TxResult>,
    /// Executions (invalid transactions are not executed).
    pub(crate) executions: &'r mut usize,
    /// Per-transaction wall times, when tracing.
    pub(crate) tx_times: Option<&'r mut Vec<Duration>>,
}

/// Executes `block.transactions[range]` one after the other on `db` with plain revm, checking
/// each against what the block has left (`totals.gas`), and returns the database with their
/// writes. The sequential engine runs a whole block through it; the parallel engine runs the
/// windows its committer takes in order while conflicts are frequent.
pub(crate) fn execute_in_order<'a, S: StateSource + ?Sized, T: Tracking>(
    block: &'a Block,
    cfg: CfgEnv,
    range: std::ops::Range<usize>,
    db: OverlayDb<'a, S, T>,
    totals: &mut InOrder<'_>,
) -> Result<OverlayDb<'a, S, T>, ExecutionError> {
    let Some(first) = block.transactions.get(range.start) else { return Ok(db) };
    let mut evm = Eip7610(
        Context::<BlockEnv, TxEnv, CfgEnv, _, Journal<_>, ()>::new(db, block.context.spec)
            .with_cfg(cfg)
            .with_block(&block.context.header)
            .with_tx(first)
            .build_mainnet(),
    );
    for (index, tx) in block.transactions[range.clone()].iter().enumerate() {
        let index = range.start + index;
        let started = totals.tx_times.is_some().then(Instant::now);
        let result = match totals.gas.check(&block.context, tx) {
            Err(invalid) => Err(invalid),
            Ok(()) => {
                *totals.executions += 1;
                evm.0.ctx.tx = tx;
                evm.0.ctx.journaled_state.database.track.begin(index);
                let outcome =
                    catch_unwind(AssertUnwindSafe(|| SeqHandler::default().run(&mut evm)))
                        .map_err(|payload| ExecutionError::Panic {
                            tx: index,
                            message: panic_message(&payload),
                        })?;
                let state = evm.0.finalize();
                match outcome {
                    Ok(result) => {
                        evm.0.ctx.journaled_state.database.commit(state);
                        Ok(totals.gas.add(tx, result))
                    }
                    Err(error) => Err(classify_error(index, error)?),
                }
            }
        };
        totals.results.push(result);
        if let (Some(times), Some(started)) = (totals.tx_times.as_deref_mut(), started) {
            times.push(started.elapsed());
        }
    }
    Ok(evm.0.ctx.journaled_state.database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_address_follows_the_permutation_exactly() {
        // Every permutation of 5, and a larger shuffled one.
        let change = |nonce: u64| AccountChange {
            info: Some(AccountState { balance: U256::ZERO, nonce, code_hash: KECCAK_EMPTY }),
            ..Default::default()
        };
        let mut orders: Vec<Vec<u64>> = Vec::new();
        let mut order: Vec<u64> = (0..5).collect();
        // Heap's algorithm.
        fn permute(k: usize, order: &mut Vec<u64>, out: &mut Vec<Vec<u64>>) {
            if k == 1 {
                out.push(order.clone());
                return;
            }
            for i in 0..k {
                permute(k - 1, order, out);
                order.swap(if k.is_multiple_of(2) { i } else { 0 }, k - 1);
            }
        }
        permute(5, &mut order, &mut orders);
        orders.push((0..1000u64).map(|i| (i * 7919) % 1000).collect());
        for order in orders {
            let mut changes: Vec<(Address, AccountChange)> = order
                .iter()
                .map(|i| (Address::left_padding_from(&i.to_be_bytes()), change(*i)))
                .collect();
            sort_by_address(&mut changes);
            for (k, (address, change)) in changes.iter().enumerate() {
                assert_eq!(*address, Address::left_padding_from(&(k as u64).to_be_bytes()));
                assert_eq!(change.info.map(|i| i.nonce), Some(k as u64), "{order:?}");
            }
        }
    }
}
