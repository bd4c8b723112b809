//! A tunable share of transactions contending for one storage slot.

use super::name;
use crate::{builder::BlockBuilder, contracts::counter, Workload};
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::seq::SliceRandom;

/// `size` calls to one `Counter`, each from its own sender: `round(share × size)` of them, at
/// random positions, call `hit()` (read-modify-write of the one hot slot, logging the new
/// value); the others call `bump()` (each its own slot). `share` is clamped to `0..=1`.
/// Cancun.
pub fn hot_contention(size: usize, seed: u64, share: f64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let contract = counter::install(&mut builder);
    let hot = ((share.clamp(0.0, 1.0) * size as f64).round() as usize).min(size);
    let mut is_hot: Vec<bool> = (0..size).map(|i| i < hot).collect();
    is_hot.shuffle(builder.rng());
    for hot in is_hot {
        let from = builder.eoa();
        let data = if hot { counter::hit() } else { counter::bump() };
        builder.call(from, contract, data, counter::GAS);
    }
    builder.finish(format!("{}/share={share}", name("hot_contention", size, seed)))
}
