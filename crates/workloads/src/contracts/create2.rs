//! Our `Create2Factory` and the `Child` it deploys with CREATE2 (`assets/sol/Create2Factory.sol`).
//!
//! `Child` storage: slot 0 `uint256 counter` (its constructor sets it to 1, `ping` increments
//! it). `destroy(to)` SELFDESTRUCTs to `to`. The factory has no storage; `deploy(salt)` returns
//! the zero address instead of reverting when the address is taken, and logs
//! `Deployed(salt, child)` either way; `deployAndDestroy(salt, to)` deploys and destroys within
//! one transaction (so the account is deleted even under EIP-6780).

use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
};
use alloy_primitives::{Address, Bytes, B256, U256};

/// Slot of `Child.counter`.
pub const COUNTER_SLOT: U256 = U256::ZERO;
/// A generous gas limit for `deploy` and `deployAndDestroy`.
pub const DEPLOY_GAS: u64 = 300_000;
/// A generous gas limit for `ping` and `destroy`.
pub const CALL_GAS: u64 = 100_000;

/// Installs a factory.
pub fn install_factory(builder: &mut BlockBuilder) -> Address {
    builder.install(assets::create2_factory(), 1, U256::ZERO)
}

/// Where `factory` deploys the child of `salt`.
pub fn child_address(factory: Address, salt: B256) -> Address {
    factory.create2(salt, assets::child_init_code_hash())
}

/// Puts the child of `salt` in the pre-state, as if `factory` had deployed it in an earlier
/// block, with `counter` and `balance`. Returns its address.
pub fn install_child(
    builder: &mut BlockBuilder,
    factory: Address,
    salt: B256,
    counter: U256,
    balance: U256,
) -> Address {
    let child = child_address(factory, salt);
    builder.install_at(child, assets::child(), 1, balance);
    builder.set_storage(child, COUNTER_SLOT, counter);
    let nonce = builder.next_nonce(factory);
    builder.set_nonce(factory, nonce + 1);
    child
}

/// Calldata of `Create2Factory.deploy(salt)`.
pub fn deploy(salt: B256) -> Bytes {
    Calldata::new("deploy(bytes32)").word(salt).build()
}

/// Calldata of `Create2Factory.deployAndDestroy(salt, to)`.
pub fn deploy_and_destroy(salt: B256, to: Address) -> Bytes {
    Calldata::new("deployAndDestroy(bytes32,address)").word(salt).address(to).build()
}

/// Calldata of `Child.ping()`.
pub fn ping() -> Bytes {
    Calldata::new("ping()").build()
}

/// Calldata of `Child.destroy(to)`.
pub fn destroy(to: Address) -> Bytes {
    Calldata::new("destroy(address)").address(to).build()
}

/// Topic of `Deployed(bytes32 indexed salt, address child)`.
pub fn deployed_topic() -> B256 {
    event_topic("Deployed(bytes32,address)")
}
