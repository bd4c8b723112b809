//! Merkle-Patricia roots of account storage and of the whole state (`alloy-trie`).

use alloy_primitives::{Address, B256, U256};
use alloy_trie::{
    root::{state_root_unhashed, storage_root_unhashed},
    TrieAccount,
};

/// The storage root of one account from its non-zero slots (zero slots are ignored).
pub fn storage_root<'a>(slots: impl IntoIterator<Item = (&'a U256, &'a U256)>) -> B256 {
    storage_root_unhashed(
        slots.into_iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (B256::from(*k), *v)),
    )
}

/// The state root from every existing account with its storage root already computed.
pub fn state_root(accounts: impl IntoIterator<Item = (Address, TrieAccount)>) -> B256 {
    state_root_unhashed(accounts)
}
