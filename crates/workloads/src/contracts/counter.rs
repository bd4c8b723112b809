//! Our `Counter` (`assets/sol/Counter.sol`): one hot slot and one slot per sender.
//!
//! Storage: slot 0 `uint256 hot`, slot 1 `mapping(address => uint256) perSender`. `hit()`
//! increments `hot` and logs `Hit(sender, hot)`; `bump()` increments `perSender[msg.sender]`.

use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
    slots::address_mapping_slot,
};
use alloy_primitives::{Address, Bytes, B256, U256};

/// Slot of `hot`.
pub const HOT_SLOT: U256 = U256::ZERO;
/// Slot of the `perSender` mapping.
pub const PER_SENDER_SLOT: U256 = U256::from_limbs([1, 0, 0, 0]);
/// A generous gas limit for `hit` and `bump`.
pub const GAS: u64 = 80_000;

/// Installs a counter.
pub fn install(builder: &mut BlockBuilder) -> Address {
    builder.install(assets::counter(), 1, U256::ZERO)
}

/// The slot of `perSender[sender]`.
pub fn per_sender_slot(sender: Address) -> U256 {
    address_mapping_slot(sender, PER_SENDER_SLOT)
}

/// Calldata of `hit()`.
pub fn hit() -> Bytes {
    Calldata::new("hit()").build()
}

/// Calldata of `bump()`.
pub fn bump() -> Bytes {
    Calldata::new("bump()").build()
}

/// Topic of `Hit(address indexed sender, uint256 value)`.
pub fn hit_topic() -> B256 {
    event_topic("Hit(address,uint256)")
}
