//! CREATE2 deployment, SELFDESTRUCT and redeployment at the same address within one block.

use super::name;
use crate::{builder::BlockBuilder, contracts::create2, Workload};
use alloy_primitives::{Address, Bytes, B256, U256};
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;
use std::collections::VecDeque;

/// One call of a scenario: target, calldata, value, gas limit.
type Step = (Address, Bytes, U256, u64);

/// `size` transactions (each from its own sender) playing interleaved scenarios on one
/// `Create2Factory` and the children it deploys with CREATE2:
///
/// 1. a child deployed in an earlier block (with storage and balance) SELFDESTRUCTs, the
///    factory redeploys it, and it is pinged;
/// 2. a new child is deployed, SELFDESTRUCTs in a later transaction, is redeployed and pinged;
/// 3. a new child is deployed and destroyed in one transaction, redeployed and pinged.
///
/// Before Cancun every SELFDESTRUCT deletes the account, so each redeployment succeeds and
/// starts from fresh storage. From Cancun on (EIP-6780) only scenario 3 deletes the child; in
/// the others SELFDESTRUCT only moves the balance and the redeployment finds the address taken
/// (the factory then logs the zero address). `spec` must be Shanghai or later (the code uses
/// PUSH0).
pub fn create2_selfdestruct(size: usize, seed: u64, spec: SpecId) -> Workload {
    assert!(spec.is_enabled_in(SpecId::SHANGHAI), "the contracts need Shanghai (PUSH0)");
    let mut builder = BlockBuilder::new(spec, seed);
    let factory = create2::install_factory(&mut builder);
    let mut scenarios: Vec<VecDeque<Step>> = Vec::new();
    let mut steps = 0;
    while steps < size {
        let salt = B256::from(builder.rng().random::<[u8; 32]>());
        let child = create2::child_address(factory, salt);
        let heir =
            if builder.rng().random_bool(0.5) { builder.fresh_address() } else { builder.eoa() };
        let value = if builder.rng().random_bool(0.5) {
            builder.random_milli_ether(1, 100)
        } else {
            U256::ZERO
        };
        let deploy = (factory, create2::deploy(salt), value, create2::DEPLOY_GAS);
        let destroy = (child, create2::destroy(heir), U256::ZERO, create2::CALL_GAS);
        let ping = (child, create2::ping(), U256::ZERO, create2::CALL_GAS);
        let scenario: VecDeque<Step> = match builder.rng().random_range(0..3) {
            0 => {
                let counter = U256::from(builder.rng().random_range(2..1_000u64));
                let balance = builder.random_milli_ether(0, 1_000);
                create2::install_child(&mut builder, factory, salt, counter, balance);
                [destroy, deploy, ping].into()
            }
            1 => [deploy.clone(), destroy, deploy, ping].into(),
            _ => {
                let once =
                    (factory, create2::deploy_and_destroy(salt, heir), value, create2::DEPLOY_GAS);
                [once, deploy, ping].into()
            }
        };
        steps += scenario.len();
        scenarios.push(scenario);
    }
    // Interleave the scenarios at random, each in its own order.
    for _ in 0..size {
        let live: Vec<usize> = (0..scenarios.len()).filter(|&i| !scenarios[i].is_empty()).collect();
        let pick = live[builder.rng().random_range(0..live.len())];
        let (to, data, value, gas) = scenarios[pick].pop_front().expect("live scenario");
        let from = builder.eoa();
        let tx = builder.new_tx(from, to, value, data, gas);
        builder.push(tx);
    }
    let fork = if spec.is_enabled_in(SpecId::CANCUN) { "cancun" } else { "shanghai" };
    builder.finish(name(&format!("create2_selfdestruct_{fork}"), size, seed))
}
