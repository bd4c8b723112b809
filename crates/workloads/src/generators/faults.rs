//! Transactions that fail: reverts and exceptional halts, all still paying for their gas.

use super::name;
use crate::{builder::BlockBuilder, contracts::faulty, Workload};
use alloy_primitives::U256;
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;

/// Gas limit of the calls that are expected to finish (successfully or with a revert).
const GAS: u64 = 100_000;

/// `size` calls to one `Faulty` contract, each from its own sender, drawn among:
/// `touch()` (succeeds), `refuse(v)` (REVERT with a custom error), `requireFalse()` (REVERT
/// with a reason string), a call with value to the non-payable `touch()` (REVERT), `burn()`
/// (runs out of gas writing storage), `halt()` (INVALID opcode) and `touch()` with a gas limit
/// that covers the intrinsic gas but not the storage write (out of gas). Cancun.
pub fn reverts_and_oog(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let contract = faulty::install(&mut builder);
    for _ in 0..size {
        let from = builder.eoa();
        let (value, data, gas) = match builder.rng().random_range(0..8) {
            0 | 1 => (U256::ZERO, faulty::touch(), GAS),
            2 => {
                let v = U256::from(builder.rng().random_range(1..1_000u64));
                (U256::ZERO, faulty::refuse(v), GAS)
            }
            3 => (U256::ZERO, faulty::require_false(), GAS),
            4 => (builder.random_milli_ether(1, 10), faulty::touch(), GAS),
            5 => (U256::ZERO, faulty::burn(), builder.rng().random_range(60_000..200_000)),
            6 => (U256::ZERO, faulty::halt(), GAS),
            _ => (U256::ZERO, faulty::touch(), 21_064 + builder.rng().random_range(100..5_000)),
        };
        let tx = builder.new_tx(from, contract, value, data, gas);
        builder.push(tx);
    }
    builder.finish(name("reverts_and_oog", size, seed))
}
