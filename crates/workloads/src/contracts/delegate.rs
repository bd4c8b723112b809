//! Our `Delegate` (`assets/sol/Delegate.sol`): the code EOAs delegate to with EIP-7702.
//!
//! It runs in the delegating account's context: storage slot 0 of the *account* holds
//! `uint256 count`. `execute()` increments it and logs `Executed(account, caller, value,
//! count)` with `account = address(this)`; `pay(to, amount)` sends the account's ether and only
//! the account itself may call it; `receive()` logs `Received(account, from, value)`.

use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
};
use alloy_primitives::{Address, Bytes, B256, U256};

/// Slot of `count` in a delegating account.
pub const COUNT_SLOT: U256 = U256::ZERO;
/// A generous gas limit for a call through a delegated account.
pub const CALL_GAS: u64 = 150_000;
/// A generous gas limit for a transaction carrying one authorization (25,000 gas each) and
/// making a call.
pub const AUTHORIZING_GAS: u64 = 200_000;

/// Installs the delegate contract.
pub fn install(builder: &mut BlockBuilder) -> Address {
    builder.install(assets::delegate(), 1, U256::ZERO)
}

/// The code of an account delegated to `delegate`: `0xef0100 || delegate`.
pub fn designator(delegate: Address) -> Bytes {
    [&[0xef, 0x01, 0x00][..], delegate.as_slice()].concat().into()
}

/// Calldata of `execute()`.
pub fn execute() -> Bytes {
    Calldata::new("execute()").build()
}

/// Calldata of `pay(to, amount)`.
pub fn pay(to: Address, amount: U256) -> Bytes {
    Calldata::new("pay(address,uint256)").address(to).uint(amount).build()
}

/// Topic of `Executed(address indexed account, address indexed caller, uint256 value,
/// uint256 count)`.
pub fn executed_topic() -> B256 {
    event_topic("Executed(address,address,uint256,uint256)")
}

/// Topic of `Received(address indexed account, address indexed from, uint256 value)`.
pub fn received_topic() -> B256 {
    event_topic("Received(address,address,uint256)")
}
