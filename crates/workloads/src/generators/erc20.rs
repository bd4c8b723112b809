//! ERC-20 `transfer` calls between distinct holder pairs.

use super::name;
use crate::{
    builder::BlockBuilder,
    contracts::erc20::{self, UNIT},
    Workload,
};
use alloy_primitives::U256;
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;

/// Number of tokens the transfers are spread over.
const TOKENS: usize = 4;

/// `size` ERC-20 transfers (OpenZeppelin token code) over four tokens, each from its own
/// holder to its own recipient: half of the recipients already hold the token, half are new
/// addresses. Every sender holds enough, so every transfer succeeds. Cancun.
pub fn erc20(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let tokens: Vec<_> = (0..TOKENS)
        .map(|i| {
            let letter = (b'A' + i as u8) as char;
            erc20::install(&mut builder, &format!("Lanes Token {letter}"), &format!("LT{letter}"))
        })
        .collect();
    for _ in 0..size {
        let token = tokens[builder.rng().random_range(0..TOKENS)];
        let from = builder.eoa();
        let balance = U256::from(builder.rng().random_range(100..10_000u64)) * UNIT;
        erc20::mint(&mut builder, token, from, balance);
        let to = if builder.rng().random_bool(0.5) {
            builder.fresh_address()
        } else {
            let to = builder.eoa();
            let held = U256::from(builder.rng().random_range(1..1_000u64)) * UNIT;
            erc20::mint(&mut builder, token, to, held);
            to
        };
        let amount = U256::from(builder.rng().random_range(1..100u64)) * UNIT;
        builder.call(from, token, erc20::transfer(to, amount), erc20::TRANSFER_GAS);
    }
    builder.finish(name("erc20", size, seed))
}
