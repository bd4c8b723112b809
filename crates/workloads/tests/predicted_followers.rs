//! The scheduler holds back transactions predicted to follow an earlier one (same sender, same
//! ERC-20 holder): these blocks are made of such chains, interleaved with independent work,
//! and every parallel run must equal the sequential one whichever transactions were set aside
//! (which ones depends on timing; the mechanism itself is unit-tested in `scheduler.rs`).

mod common;

use alloy_primitives::U256;
use common::storage_after;
use lanes_executor::{execute, revm::primitives::hardfork::SpecId, Engine, TxOutcome, TxStatus};
use lanes_workloads::{
    contracts::{
        erc20::{self, UNIT},
        faulty,
    },
    env::ETHER,
    BlockBuilder, Workload,
};

/// Deposits swept to one exchange address (as in mainnet block 12522062): 40 holders each send
/// tokens to it, between independent transfers of other holders; one sender also pays five
/// times in a row, the first time right after a slow call of its own (so that a second worker
/// usually finds the payment's predecessor still running); the exchange then moves part of
/// what it received on.
fn deposits_to_one_exchange(
) -> (Workload, alloy_primitives::Address, alloy_primitives::Address, U256) {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, 7);
    let token = erc20::install(&mut builder, "Deposit Token", "DEP");
    let exchange = builder.eoa();
    erc20::mint(&mut builder, token, exchange, UNIT);
    let payer = builder.eoa();
    let slow = faulty::install(&mut builder);
    builder.call(payer, slow, faulty::burn(), 2_000_000);
    let mut deposited = U256::ZERO;
    for i in 0..40u64 {
        let holder = builder.eoa();
        erc20::mint(&mut builder, token, holder, U256::from(1_000) * UNIT);
        let amount = U256::from(1 + i) * UNIT;
        deposited += amount;
        builder.call(holder, token, erc20::transfer(exchange, amount), erc20::TRANSFER_GAS);
        if i % 4 == 0 {
            let (from, to) = (builder.eoa(), builder.eoa());
            erc20::mint(&mut builder, token, from, U256::from(10) * UNIT);
            builder.call(from, token, erc20::transfer(to, UNIT), erc20::TRANSFER_GAS);
        }
        if i % 8 == 0 {
            let to = builder.fresh_address();
            builder.transfer(payer, to, U256::from(ETHER / 1_000));
        }
    }
    let onward = U256::from(100) * UNIT;
    let cold = builder.fresh_address();
    builder.call(exchange, token, erc20::transfer(cold, onward), erc20::TRANSFER_GAS);
    let expected = UNIT + deposited - onward;
    (builder.finish("deposits to one exchange"), token, exchange, expected)
}

#[test]
fn chains_of_predicted_followers_match_sequential() {
    let (workload, token, exchange, expected) = deposits_to_one_exchange();
    let sequential = execute(Engine::Sequential, &workload.block, &workload.state).unwrap();
    // The slow call burns its gas and halts; everything else succeeds.
    for (i, result) in sequential.results.iter().enumerate() {
        let succeeded = matches!(result, Ok(TxOutcome { status: TxStatus::Success(_), .. }));
        assert_eq!(succeeded, i != 0, "transaction {i}: {result:?}");
    }
    assert_eq!(
        storage_after(&workload, &sequential, token, erc20::balance_slot(exchange)),
        expected,
        "every deposit arrived, the onward transfer left"
    );
    let rounds = 40;
    for threads in [2, 4] {
        let mut deferred = 0;
        for round in 0..rounds {
            let parallel =
                execute(Engine::Parallel { threads }, &workload.block, &workload.state).unwrap();
            assert!(
                parallel.same_result(&sequential),
                "{threads} threads, round {round}: {}",
                parallel.first_difference(&sequential).unwrap_or_default()
            );
            deferred += parallel.stats.deferred;
            // Each transaction runs speculatively at most once and at most once more at commit.
            let txs = workload.block.transactions.len();
            assert!(parallel.stats.executions <= 2 * txs);
            assert_eq!(parallel.stats.executions, txs + parallel.stats.reexecutions);
        }
        println!("{threads} threads: {deferred} transactions deferred over {rounds} rounds");
    }
    // One worker never finds the transaction followed unfinished.
    let one = execute(Engine::Parallel { threads: 1 }, &workload.block, &workload.state).unwrap();
    assert!(one.same_result(&sequential));
    assert_eq!(one.stats.deferred, 0);
}
