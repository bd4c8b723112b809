//! Our `CoinbaseProbe` (`assets/sol/CoinbaseProbe.sol`): reads and pays the block's beneficiary.
//!
//! Storage: slot 0 `uint256 lastSeen`. `probe()` reads `block.coinbase.balance` (BALANCE),
//! stores it and logs `Seen(coinbase, balance)`; `tip()` forwards its value to the coinbase.

use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
};
use alloy_primitives::{Address, Bytes, B256, U256};

/// A generous gas limit for `probe` and `tip`.
pub const GAS: u64 = 100_000;

/// Installs a probe.
pub fn install(builder: &mut BlockBuilder) -> Address {
    builder.install(assets::coinbase_probe(), 1, U256::ZERO)
}

/// Calldata of `probe()`.
pub fn probe() -> Bytes {
    Calldata::new("probe()").build()
}

/// Calldata of `tip()` (send it with value).
pub fn tip() -> Bytes {
    Calldata::new("tip()").build()
}

/// Topic of `Seen(address indexed coinbase, uint256 balance)`.
pub fn seen_topic() -> B256 {
    event_topic("Seen(address,uint256)")
}
