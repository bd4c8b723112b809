//! A block's writes over the read-only pre-block state.
//!
//! Everything a block does (system calls, the DAO change, the transactions' changes, rewards,
//! withdrawals) lands on an [`Overlay`]; the pre-block state is never written. The overlay is
//! itself a [`StateSource`], so the executor runs the transactions on the state the pre-block
//! system calls left, and [`OverlayDb`] lets revm run system calls on it. Only when every check
//! has passed does the importer turn the overlay into [`StateChanges`] and apply them.

use alloy_primitives::{map::HashMap, Address, B256, U256};
use lanes_state::{changes::AccountState, AccountChange, SourceError, StateChanges, StateSource};
use revm::{
    bytecode::Bytecode,
    database_interface::{DBErrorMarker, Database, DatabaseCommit},
    primitives::{AddressMap, KECCAK_EMPTY},
    state::{Account, AccountInfo},
};

/// Storage written during the block for one account.
#[derive(Clone, Debug, Default)]
struct StorageOverlay {
    /// The storage was wiped: unlisted slots read as zero.
    cleared: bool,
    slots: HashMap<U256, U256>,
}

/// The block's writes so far over the pre-block state `base`.
pub struct Overlay<'a, S: ?Sized> {
    base: &'a S,
    accounts: HashMap<Address, Option<AccountInfo>>,
    storage: HashMap<Address, StorageOverlay>,
    codes: HashMap<B256, Bytecode>,
}

impl<S: ?Sized> std::fmt::Debug for Overlay<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("accounts", &self.accounts.len())
            .field("storage", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl<'a, S: StateSource + ?Sized> Overlay<'a, S> {
    /// An overlay with no writes over `base`.
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            accounts: HashMap::default(),
            storage: HashMap::default(),
            codes: HashMap::default(),
        }
    }

    fn code_of(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        match self.codes.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.base.code(code_hash),
        }
    }

    /// Applies the changes the executor returned for the transactions.
    pub fn apply(&mut self, changes: &StateChanges) -> Result<(), SourceError> {
        for (address, change) in &changes.accounts {
            let info = match change.info {
                None => None,
                Some(AccountState { balance, nonce, code_hash }) => {
                    let code = match &change.code {
                        Some(code) => {
                            self.codes.insert(code_hash, code.clone());
                            code.clone()
                        }
                        None => self.code_of(code_hash)?,
                    };
                    Some(AccountInfo {
                        balance,
                        nonce,
                        code_hash,
                        account_id: None,
                        code: (code_hash != KECCAK_EMPTY).then_some(code),
                    })
                }
            };
            let storage = self.storage.entry(*address).or_default();
            if info.is_none() || change.storage_cleared {
                storage.cleared = true;
                storage.slots.clear();
            }
            storage.slots.extend(change.storage.iter().map(|(k, v)| (*k, *v)));
            self.accounts.insert(*address, info);
        }
        Ok(())
    }

    /// The account at `address` as the block has left it so far.
    pub fn account_now(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        match self.accounts.get(&address) {
            Some(account) => Ok(account.clone()),
            None => self.base.account(address),
        }
    }

    /// Replaces the account at `address` (its storage stays).
    pub fn set_account(&mut self, address: Address, info: Option<AccountInfo>) {
        if info.is_none() {
            let storage = self.storage.entry(address).or_default();
            storage.cleared = true;
            storage.slots.clear();
        }
        self.accounts.insert(address, info);
    }

    /// Adds `amount` to the balance of `address`, creating the account when `amount` is not
    /// zero. A zero amount to an empty account deletes it when `state_clear` (EIP-161) holds,
    /// and leaves a missing account missing.
    pub fn add_balance(
        &mut self,
        address: Address,
        amount: U256,
        state_clear: bool,
    ) -> Result<(), SourceError> {
        let account = self.account_now(address)?;
        let mut info = match account {
            Some(info) => info,
            None if amount.is_zero() && state_clear => return Ok(()),
            None => AccountInfo { code_hash: KECCAK_EMPTY, ..Default::default() },
        };
        info.balance = info.balance.saturating_add(amount);
        if state_clear && info.is_empty() {
            self.set_account(address, None);
        } else {
            self.accounts.insert(address, Some(info));
        }
        Ok(())
    }

    /// Commits a revm journal (a system call's) with revm's own rules: self-destructed or
    /// touched-while-empty accounts go (EIP-161; revm keeps them alive before Spurious Dragon),
    /// created accounts get new storage, others get their changed slots.
    pub fn commit_journal(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            let changed: Vec<(U256, U256)> = account
                .storage
                .iter()
                .filter(|(_, s)| s.is_changed())
                .map(|(k, s)| (*k, s.present_value))
                .collect();
            if account.is_selfdestructed() || (!account.is_created() && account.is_empty()) {
                self.set_account(address, None);
                continue;
            }
            let created = account.is_created();
            let info = account.info;
            if let Some(code) = &info.code {
                if info.code_hash != KECCAK_EMPTY {
                    self.codes.entry(info.code_hash).or_insert_with(|| code.clone());
                }
            }
            let storage = self.storage.entry(address).or_default();
            if created {
                storage.cleared = true;
                storage.slots.clear();
            }
            storage.slots.extend(changed);
            self.accounts.insert(address, Some(info));
        }
    }

    /// The canonical changes of everything written so far, relative to the pre-block state.
    pub fn to_changes(&self) -> Result<StateChanges, SourceError> {
        // Gathered in the tables' order, sorted once at the end.
        let mut changes = Vec::with_capacity(self.accounts.len());
        let mut add = |address: Address, change: AccountChange| {
            change.canonical(self.base, address).map(|kept| {
                changes.extend(kept.map(|change| (address, change)));
            })
        };
        let empty = StorageOverlay::default();
        for (address, info) in &self.accounts {
            let storage = self.storage.get(address).unwrap_or(&empty);
            let code = match info {
                Some(i) if i.code_hash != KECCAK_EMPTY => Some(match &i.code {
                    Some(code) => code.clone(),
                    None => self.code_of(i.code_hash)?,
                }),
                _ => None,
            };
            let change = AccountChange {
                info: info.as_ref().map(AccountState::from),
                code,
                storage_cleared: storage.cleared,
                storage: storage.slots.iter().map(|(k, v)| (*k, *v)).collect(),
            };
            add(*address, change)?;
        }
        // Storage written to accounts whose info was never replaced.
        for (address, storage) in &self.storage {
            if self.accounts.contains_key(address) {
                continue;
            }
            let Some(info) = self.base.account(*address)? else { continue };
            let change = AccountChange {
                info: Some(AccountState::from(&info)),
                code: None,
                storage_cleared: storage.cleared,
                storage: storage.slots.iter().map(|(k, v)| (*k, *v)).collect(),
            };
            add(*address, change)?;
        }
        Ok(StateChanges { accounts: changes.into_iter().collect() })
    }
}

impl<S: StateSource + ?Sized> StateSource for Overlay<'_, S> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        self.account_now(address)
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        self.code_of(code_hash)
    }

    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError> {
        if let Some(overlay) = self.storage.get(&address) {
            if let Some(value) = overlay.slots.get(&index) {
                return Ok(*value);
            }
            if overlay.cleared {
                return Ok(U256::ZERO);
            }
        }
        self.base.storage(address, index)
    }

    fn has_storage(&self, address: Address) -> Result<bool, SourceError> {
        if let Some(overlay) = self.storage.get(&address) {
            if overlay.slots.values().any(|v| !v.is_zero()) {
                return Ok(true);
            }
            if overlay.cleared {
                return Ok(false);
            }
        }
        self.base.has_storage(address)
    }
}

/// The error of [`OverlayDb`]: the state source failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OverlayDbError(pub SourceError);

impl DBErrorMarker for OverlayDbError {}

/// A revm database over an [`Overlay`], for the system calls; commits land on the overlay.
pub struct OverlayDb<'o, 'a, S: ?Sized> {
    /// The overlay read and written.
    pub overlay: &'o mut Overlay<'a, S>,
    /// Hashes `BLOCKHASH` can see (system contracts do not use it; unknown heights read zero).
    pub block_hashes: &'o lanes_executor::BlockHashes,
}

impl<S: ?Sized> std::fmt::Debug for OverlayDb<'_, '_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayDb").field("overlay", &self.overlay).finish_non_exhaustive()
    }
}

impl<S: StateSource + ?Sized> Database for OverlayDb<'_, '_, S> {
    type Error = OverlayDbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, OverlayDbError> {
        let mut account = self.overlay.account_now(address).map_err(OverlayDbError)?;
        if let Some(info) = account.as_mut() {
            if info.code.is_none() && info.code_hash != KECCAK_EMPTY {
                info.code = Some(self.overlay.code_of(info.code_hash).map_err(OverlayDbError)?);
            }
        }
        Ok(account)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, OverlayDbError> {
        self.overlay.code_of(code_hash).map_err(OverlayDbError)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, OverlayDbError> {
        StateSource::storage(self.overlay, address, index).map_err(OverlayDbError)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, OverlayDbError> {
        Ok(self.block_hashes.get(number).unwrap_or_default())
    }
}

impl<S: StateSource + ?Sized> DatabaseCommit for OverlayDb<'_, '_, S> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        self.overlay.commit_journal(changes);
    }
}
