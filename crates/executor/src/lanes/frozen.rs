//! The state a round of lanes reads: the block's pre-state under the writes of every
//! transaction the earlier rounds kept, frozen while the round runs.

use crate::sequential::OverlayDb;
use alloy_primitives::{Address, B256, U256};
use lanes_state::{SourceError, StateSource};
use revm::{bytecode::Bytecode, state::AccountInfo};

/// The pre-state `source` with the earlier rounds' overlay `base` on top.
#[derive(Debug)]
pub(crate) struct Frozen<'b, 'a, S: ?Sized> {
    pub(crate) base: &'b OverlayDb<'a, S>,
    pub(crate) source: &'a S,
}

impl<S: StateSource + ?Sized> StateSource for Frozen<'_, '_, S> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, SourceError> {
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
