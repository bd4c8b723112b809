//! Our `Faulty` (`assets/sol/Faulty.sol`): functions that fail in each way a transaction can.
//!
//! Storage: slot 0 `mapping(address => uint256) hits`. Every function writes it first, so that
//! a failure has something to undo.

use crate::{abi::Calldata, assets, builder::BlockBuilder};
use alloy_primitives::{Address, Bytes, U256};

/// Slot of the `hits` mapping.
pub const HITS_SLOT: U256 = U256::ZERO;

/// Installs a `Faulty`.
pub fn install(builder: &mut BlockBuilder) -> Address {
    builder.install(assets::faulty(), 1, U256::ZERO)
}

/// Calldata of `touch()`: succeeds.
pub fn touch() -> Bytes {
    Calldata::new("touch()").build()
}

/// Calldata of `refuse(value)`: REVERTs with the custom error `Refused(sender, value)`.
pub fn refuse(value: U256) -> Bytes {
    Calldata::new("refuse(uint256)").uint(value).build()
}

/// Calldata of `requireFalse()`: REVERTs with `Error("Faulty: require failed")`.
pub fn require_false() -> Bytes {
    Calldata::new("requireFalse()").build()
}

/// Calldata of `burn()`: writes fresh slots until it runs out of gas.
pub fn burn() -> Bytes {
    Calldata::new("burn()").build()
}

/// Calldata of `halt()`: executes INVALID.
pub fn halt() -> Bytes {
    Calldata::new("halt()").build()
}
