//! A complete state held in memory: the pre-state of state tests, synthetic blocks and fixtures.

use crate::{
    changes::{AccountState, StateChanges},
    root,
    source::{SourceError, StateSource},
};
use alloy_primitives::{keccak256, map::HashMap, Address, B256, U256};
use alloy_trie::TrieAccount;
use revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY, state::AccountInfo};

/// One account of an [`InMemoryState`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// The account's code (empty for none).
    pub code: Bytecode,
    /// keccak256 of `code`.
    pub code_hash: B256,
    /// Non-zero storage slots.
    pub storage: HashMap<U256, U256>,
}

impl MemoryAccount {
    /// An account with `balance` and nothing else.
    pub fn with_balance(balance: U256) -> Self {
        Self { balance, code_hash: KECCAK_EMPTY, ..Default::default() }
    }

    /// An account with `code` (hashed here), `balance` and nonce 1.
    pub fn with_code(code: Bytecode, balance: U256) -> Self {
        let code_hash = if code.is_empty() { KECCAK_EMPTY } else { code.hash_slow() };
        Self { balance, nonce: 1, code, code_hash, storage: HashMap::default() }
    }

    fn info(&self) -> AccountInfo {
        // Built field by field: `AccountInfo::default()` allocates an empty code.
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            account_id: None,
            // No code for code-less accounts: revm makes the empty code itself when needed.
            code: (!self.code.is_empty()).then(|| self.code.clone()),
        }
    }
}

/// A complete world state in hash maps. Implements [`StateSource`].
#[derive(Clone, Debug, Default)]
pub struct InMemoryState {
    accounts: HashMap<Address, MemoryAccount>,
    codes: HashMap<B256, Bytecode>,
}

impl InMemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) an account. Zero storage values are dropped.
    pub fn insert_account(&mut self, address: Address, mut account: MemoryAccount) {
        if account.code.is_empty() {
            account.code_hash = KECCAK_EMPTY;
        } else {
            if account.code_hash == KECCAK_EMPTY || account.code_hash.is_zero() {
                account.code_hash = account.code.hash_slow();
            }
            self.codes.insert(account.code_hash, account.code.clone());
        }
        account.storage.retain(|_, v| !v.is_zero());
        self.accounts.insert(address, account);
    }

    /// Registers a code by its hash (for accounts inserted with only a code hash).
    pub fn insert_code(&mut self, code: Bytecode) -> B256 {
        let hash = keccak256(code.original_byte_slice());
        self.codes.insert(hash, code);
        hash
    }

    /// The account at `address`, if it exists.
    pub fn get(&self, address: &Address) -> Option<&MemoryAccount> {
        self.accounts.get(address)
    }

    /// Mutable access to the account at `address`, if it exists.
    pub fn get_mut(&mut self, address: &Address) -> Option<&mut MemoryAccount> {
        self.accounts.get_mut(address)
    }

    /// Removes the account at `address`, returning it.
    pub fn remove(&mut self, address: &Address) -> Option<MemoryAccount> {
        self.accounts.remove(address)
    }

    /// Iterates over all accounts in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Address, &MemoryAccount)> {
        self.accounts.iter()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the state has no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Applies a block's changes.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, change) in &changes.accounts {
            let Some(AccountState { balance, nonce, code_hash }) = change.info else {
                self.accounts.remove(address);
                continue;
            };
            let code = match &change.code {
                Some(code) => {
                    self.codes.insert(code_hash, code.clone());
                    code.clone()
                }
                None => self.codes.get(&code_hash).cloned().unwrap_or_default(),
            };
            let account = self.accounts.entry(*address).or_default();
            account.balance = balance;
            account.nonce = nonce;
            account.code_hash = code_hash;
            account.code = code;
            if change.storage_cleared {
                account.storage.clear();
            }
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    account.storage.remove(slot);
                } else {
                    account.storage.insert(*slot, *value);
                }
            }
        }
    }

    /// The Merkle-Patricia root of the whole state.
    // `TrieAccount` gains a field under some alloy-trie features; the update keeps this
    // building whichever features the workspace unifies.
    #[allow(clippy::needless_update)]
    pub fn state_root(&self) -> B256 {
        root::state_root(self.accounts.iter().map(|(address, account)| {
            (
                *address,
                TrieAccount {
                    nonce: account.nonce,
                    balance: account.balance,
                    storage_root: root::storage_root(account.storage.iter()),
                    code_hash: account.code_hash,
                    ..Default::default()
                },
            )
        }))
    }
}

/// Errors of [`InMemoryState`].
#[derive(Debug, thiserror::Error)]
pub enum MemoryStateError {
    /// An account refers to a code hash whose code was never inserted.
    #[error("code {0} is not in the state")]
    MissingCode(B256),
}

impl StateSource for InMemoryState {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        Ok(self.accounts.get(&address).map(MemoryAccount::info))
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.codes
            .get(&code_hash)
            .cloned()
            .ok_or_else(|| Box::new(MemoryStateError::MissingCode(code_hash)) as SourceError)
    }

    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError> {
        Ok(self
            .accounts
            .get(&address)
            .and_then(|a| a.storage.get(&index).copied())
            .unwrap_or_default())
    }

    fn has_storage(&self, address: Address) -> Result<bool, SourceError> {
        Ok(self.accounts.get(&address).is_some_and(|a| !a.storage.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{changes::AccountState, AccountChange};

    #[test]
    fn empty_state_root_is_the_empty_trie_root() {
        assert_eq!(InMemoryState::new().state_root(), alloy_trie::EMPTY_ROOT_HASH);
    }

    #[test]
    fn applying_changes_moves_the_root_and_back() {
        let mut state = InMemoryState::new();
        let address = Address::repeat_byte(1);
        state.insert_account(address, MemoryAccount::with_balance(U256::from(1)));
        let before = state.state_root();
        let mut changes = StateChanges::default();
        let mut storage = std::collections::BTreeMap::new();
        storage.insert(U256::from(1), U256::from(2));
        changes.accounts.insert(
            address,
            AccountChange {
                info: Some(AccountState {
                    balance: U256::from(3),
                    nonce: 1,
                    code_hash: KECCAK_EMPTY,
                }),
                storage,
                ..Default::default()
            },
        );
        state.apply(&changes);
        assert_ne!(state.state_root(), before);
        assert_eq!(state.get(&address).unwrap().storage[&U256::from(1)], U256::from(2));

        let mut back = StateChanges::default();
        back.accounts.insert(
            address,
            AccountChange {
                info: Some(AccountState {
                    balance: U256::from(1),
                    nonce: 0,
                    code_hash: KECCAK_EMPTY,
                }),
                storage_cleared: true,
                ..Default::default()
            },
        );
        state.apply(&back);
        assert_eq!(state.state_root(), before);
    }

    #[test]
    fn missing_code_is_an_error_not_a_panic() {
        let state = InMemoryState::new();
        assert!(state.code(B256::repeat_byte(9)).is_err());
        assert!(state.code(KECCAK_EMPTY).unwrap().is_empty());
    }
}
