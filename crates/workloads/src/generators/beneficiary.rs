//! A block that reads the beneficiary's balance mid-block and pays the beneficiary directly.

use super::name;
use crate::{builder::BlockBuilder, contracts::coinbase_probe, env::BENEFICIARY, Workload};
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;

/// `size` transactions, each from its own sender: mostly plain transfers (whose fees go to
/// the beneficiary), some ether sent straight to the beneficiary, some `CoinbaseProbe.tip()`
/// calls forwarding value to it, and `CoinbaseProbe.probe()` calls (one in the middle of the
/// block, others at random) that read the beneficiary's balance with BALANCE: each must see
/// every fee and payment of the transactions before it. Cancun.
pub fn beneficiary_read(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let probe = coinbase_probe::install(&mut builder);
    for i in 0..size {
        let from = builder.eoa();
        let roll = builder.rng().random_range(0..100);
        if i == size / 2 || roll < 8 {
            builder.call(from, probe, coinbase_probe::probe(), coinbase_probe::GAS);
        } else if roll < 20 {
            let value = builder.random_milli_ether(1, 100);
            builder.transfer(from, BENEFICIARY, value);
        } else if roll < 30 {
            let value = builder.random_milli_ether(1, 100);
            let tx = builder.new_tx(from, probe, value, coinbase_probe::tip(), coinbase_probe::GAS);
            builder.push(tx);
        } else {
            let to = builder.eoa();
            let value = builder.random_milli_ether(1, 1_000);
            builder.transfer(from, to, value);
        }
    }
    builder.finish(name("beneficiary_read", size, seed))
}
