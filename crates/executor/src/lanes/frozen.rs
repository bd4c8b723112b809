//! The state a round of lanes reads: the block's pre-state under the writes of every
//! transaction the earlier rounds kept, frozen while the round runs; for a lane of a split
//! round (`split.rs`), with the sender's value it assumes at its start.

use crate::sequential::OverlayDb;
use alloy_primitives::{Address, B256, U256};
use lanes_state::{SourceError, StateSource};
use revm::{bytecode::Bytecode, state::AccountInfo};

/// The pre-state `source` with the earlier rounds' overlay `base` on top, and one account
/// assumed (`sender`).
#[derive(Debug)]
pub(crate) struct Frozen<'b, 'a, S: ?Sized> {
    pub(crate) base: &'b OverlayDb<'a, S>,
    pub(crate) source: &'a S,
    /// An account read as this value, whatever `base` and `source` say.
    pub(crate) sender: Option<(Address, AccountInfo)>,
}

impl<S: StateSource + ?Sized> StateSource for Frozen<'_, '_, S> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
        if let Some((sender, assumed)) = &self.sender {
            if *sender == address {
                return Ok(Some(assumed.clone()));
            }
        }
        match self.base.loaded(&address) {
            Some(now) => Ok(now.clone()),
            None => self.source.account(address),
        }
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, SourceError> {
        match self.base.deployed_code(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.source.code(code_hash),
        }
    }

    fn storage(&self, address: Address, index: U256) -> Result<U256, SourceError> {
        match self.base.written_slot(&address, &index) {
            Some(value) => Ok(value.unwrap_or_default()),
            None => self.source.storage(address, index),
        }
    }

    fn has_storage(&self, address: Address) -> Result<bool, SourceError> {
        match self.base.written_storage(&address) {
            Some(has) => Ok(has),
            None => self.source.has_storage(address),
        }
    }
}
