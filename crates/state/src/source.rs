//! The read-only state source every executor reads the pre-block state from.

use alloy_primitives::{Address, B256, U256};
use revm::{bytecode::Bytecode, state::AccountInfo};

/// An error raised by a [`StateSource`]: the source could not answer (I/O, corruption, ...).
///
/// Executors treat it as fatal for the block and report which transaction hit it.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Read-only access to the state a block executes on.
///
/// Implementations must be cheap to call from many threads at once (`Sync`) and must always
/// return the same answer for the same question: executors may ask more than once.
pub trait StateSource: Sync {
    /// The account at `address`, or `None` when it does not exist.
    ///
    /// The returned [`AccountInfo::code`] may be `None`; the executor then asks [`Self::code`]
    /// for `code_hash`.
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError>;

    /// The bytecode whose keccak256 is `code_hash`.
    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError>;

    /// The value of storage slot `index` of `address` (zero when unset).
    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError>;

    /// Whether `address` has any non-zero storage slot.
    ///
    /// Needed for EIP-7610: creating a contract at an address with storage is a collision.
    fn has_storage(&self, address: Address) -> Result<bool, SourceError>;
}

impl<T: StateSource + ?Sized> StateSource for &T {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        (**self).account(address)
    }
    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        (**self).code(code_hash)
    }
    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError> {
        (**self).storage(address, index)
    }
    fn has_storage(&self, address: Address) -> Result<bool, SourceError> {
        (**self).has_storage(address)
    }
}
