//! Plain ether transfers: independent, chained from one sender, or all to one recipient.

use super::name;
use crate::{builder::BlockBuilder, env::ETHER, Workload};
use alloy_primitives::U256;
use lanes_executor::revm::primitives::hardfork::SpecId;

/// `size` independent transfers: each from its own funded account to its own funded account
/// (21,000 gas each). Cancun.
pub fn raw_transfers(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    for _ in 0..size {
        let from = builder.eoa();
        let to = builder.eoa();
        let value = builder.random_milli_ether(1, 1_000);
        builder.transfer(from, to, value);
    }
    builder.finish(name("raw_transfers", size, seed))
}

/// `size` transfers from one sender (nonces 0 to `size - 1`), each to a new account. Every
/// transaction depends on the previous one through the sender's nonce and balance. Cancun.
pub fn transfer_chain(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let sender = builder.eoa_with_balance(U256::from(1_000 * ETHER + size as u128 * 2 * ETHER));
    for _ in 0..size {
        let to = builder.fresh_address();
        let value = builder.random_milli_ether(1, 1_000);
        builder.transfer(sender, to, value);
    }
    builder.finish(name("transfer_chain", size, seed))
}

/// `size` transfers from distinct senders to one funded recipient. Cancun.
pub fn hot_recipient(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let recipient = builder.eoa();
    for _ in 0..size {
        let from = builder.eoa();
        let value = builder.random_milli_ether(1, 1_000);
        builder.transfer(from, recipient, value);
    }
    builder.finish(name("hot_recipient", size, seed))
}
