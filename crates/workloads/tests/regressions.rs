//! Blocks on which the parallel engine has differed from the sequential one: each found by the
//! randomized differential test (`tests/differential.rs`), reduced to a few transactions. They
//! are executor bugs, not workload bugs; every test asserts that parallel equals sequential.
//!
//! The parallel engine's interleavings vary from run to run, so each test runs its block many
//! times and fails if any run differs.
//!
//! - `regression_*`: lost balance credits. A transaction wrote an account *as a whole* (its
//!   nonce or code changed) after reading it without looking at its balance, so validation
//!   compared only whether the balance was zero; an earlier transaction's credit to that
//!   account published after the later one ran was lost. Fixed by commit 07f389d ("Validate
//!   the balance of every account a transaction writes as a whole"); these tests failed before.
//! - `regression_create2_after_selfdestruct_sees_wiped_storage`: the EIP-7610 storage check
//!   answered from a state without the destroying transaction's wipe, and that answer was not
//!   validated. Fixed by recording the answer in the read set (and publishing wipes before
//!   account writes).

mod common;

use alloy_primitives::{Address, B256, U256};
use lanes_executor::{execute, revm::primitives::hardfork::SpecId, Engine};
use lanes_workloads::{
    contracts::{create2, delegate, faulty},
    env::ETHER,
    keys::Key,
    BlockBuilder, Workload,
};

/// Runs `workload` in parallel `rounds` times with `threads` and asserts every result equals
/// the sequential one.
fn assert_parallel_always_matches(workload: &Workload, threads: usize, rounds: usize) {
    let sequential = execute(Engine::Sequential, &workload.block, &workload.state).unwrap();
    let mut failures = Vec::new();
    for round in 0..rounds {
        let parallel =
            execute(Engine::Parallel { threads }, &workload.block, &workload.state).unwrap();
        if let Some(difference) = parallel.first_difference(&sequential) {
            failures.push(format!("round {round}: {difference}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: parallel ({threads} threads) differed from sequential in {} of {rounds} rounds; first: {}",
        workload.name,
        failures.len(),
        failures[0]
    );
}

/// A slow transaction (`Faulty.burn()` with 5 million gas) and then, from the same sender, a
/// payment to `recipient` (a balance credit). Executed in parallel, the payment first runs
/// with the sender's stale nonce and only takes effect when it is re-executed at commit time,
/// after the transactions behind it have run.
fn late_credit(builder: &mut BlockBuilder, recipient: Address) {
    let faulty = faulty::install(builder);
    let sender = builder.eoa();
    builder.call(sender, faulty, faulty::burn(), 5_000_000);
    builder.transfer(sender, recipient, U256::from(ETHER / 100));
}

/// An EIP-7702 authorization (nonce and code of the authority change) lost an earlier credit
/// to the authority. Found with seed 441343359 (`mixed/142/seed=441343359/PRAGUE`, 4 threads):
/// "state: account 0xb9120705C0E9C85E0B855003A1aB6276AC76f2ff: Some(AccountState { balance:
/// 25000000000000000, nonce: 2, .. }) vs Some(AccountState { balance: 35000000000000000,
/// nonce: 2, .. })" (parallel vs sequential).
#[test]
fn regression_eip7702_authorization_kept_earlier_credit() {
    let mut builder = BlockBuilder::new(SpecId::PRAGUE, 1);
    let target = delegate::install(&mut builder);
    let key = Key::derive(1, 0);
    builder.fund(key.address(), U256::from(ETHER));
    late_credit(&mut builder, key.address());
    let sponsor = builder.eoa();
    let authorization = key.authorize(1, target, 0);
    let elsewhere = Address::repeat_byte(0x11);
    let tx =
        builder.new_tx_7702(sponsor, elsewhere, Default::default(), 100_000, vec![authorization]);
    builder.push(tx);
    let workload = builder.finish("regression: 7702 authority credit");
    assert_parallel_always_matches(&workload, 4, 200);
}

/// CREATE2 at an address that already held ether (the new account carries the balance over)
/// lost an earlier credit to that address. Found with seed 1002406
/// (`mixed/157/seed=1002406/CANCUN`, 8 threads) among many others.
#[test]
fn regression_create2_at_funded_address_kept_earlier_credit() {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, 2);
    let factory = create2::install_factory(&mut builder);
    let salt = B256::repeat_byte(0x42);
    let child = create2::child_address(factory, salt);
    builder.fund(child, U256::from(ETHER));
    late_credit(&mut builder, child);
    let deployer = builder.eoa();
    builder.call(deployer, factory, create2::deploy(salt), create2::DEPLOY_GAS);
    let workload = builder.finish("regression: CREATE2 target credit");
    assert_parallel_always_matches(&workload, 4, 200);
}

/// A CREATE2 without value bumped the factory's nonce (its balance unobserved) and lost an
/// earlier credit to the factory (here a SELFDESTRUCT paying it). Found with seed 1002777
/// (`mixed/137/seed=1002777/SHANGHAI`, 8 threads): "state: account
/// 0x1bc57544159fC9C6D064e94C602C9fAA9f44174C: Some(AccountState { balance:
/// 72000000000000000, nonce: 8, .. }) vs Some(AccountState { balance: 14000000000000000,
/// nonce: 8, .. })" (parallel vs sequential).
#[test]
fn regression_create2_nonce_bump_kept_earlier_credit_to_creator() {
    let mut builder = BlockBuilder::new(SpecId::SHANGHAI, 3);
    let factory = create2::install_factory(&mut builder);
    builder.fund(factory, U256::from(ETHER));
    let old = create2::install_child(
        &mut builder,
        factory,
        B256::repeat_byte(1),
        U256::from(1),
        U256::from(ETHER),
    );
    // The credit: `old` self-destructs to the factory, late.
    let faulty = faulty::install(&mut builder);
    let sender = builder.eoa();
    builder.call(sender, faulty, faulty::burn(), 5_000_000);
    builder.call(sender, old, create2::destroy(factory), create2::CALL_GAS);
    let deployer = builder.eoa();
    builder.call(deployer, factory, create2::deploy(B256::repeat_byte(2)), create2::DEPLOY_GAS);
    let workload = builder.finish("regression: CREATE2 creator credit");
    assert_parallel_always_matches(&workload, 4, 200);
}

/// Regression (executor bug, fixed): redeploying with CREATE2 right after a SELFDESTRUCT
/// (Shanghai) of a contract that had storage before the block was sometimes a collision in
/// parallel (EIP-7610: "the address has storage"), while it succeeds sequentially.
///
/// Found with seed 5027321 (`mixed(111, 5027321)`, `mixed/126/seed=5027321/SHANGHAI`, 7
/// threads; about 1 run in 8 fails): "transaction 76: Ok(TxOutcome { status: Success(Return),
/// gas_used: 297697, .. Deployed(salt, 0x0) .. }) vs Ok(TxOutcome { status: Success(Return),
/// gas_used: 134149, .. })" (parallel vs sequential).
///
/// Cause: `MvMemory::publish` published the destroying transaction's account write
/// before its storage wipe. A deployment that runs in between reads the account as gone (code
/// and nonce empty, a read that validates) but no wipe yet, so `TxDb::has_storage` answers
/// from the pre-block storage: a collision that validation never revisits (the wipe is not
/// part of the read set). The fix records the `has_storage` answer in the read set, so
/// validation revisits it, and publishes wipes before account writes.
///
/// Eight independent destroy-then-redeploy pairs make the race likely enough to be caught in
/// 2,000 runs (1% to 3% of runs fail on 2 cores).
#[test]
fn regression_create2_after_selfdestruct_sees_wiped_storage() {
    let mut builder = BlockBuilder::new(SpecId::SHANGHAI, 4);
    let factory = create2::install_factory(&mut builder);
    for k in 1..=8u64 {
        let salt = B256::from(U256::from(k));
        let child =
            create2::install_child(&mut builder, factory, salt, U256::from(5), U256::from(ETHER));
        let destroyer = builder.eoa();
        let heir = builder.fresh_address();
        builder.call(destroyer, child, create2::destroy(heir), create2::CALL_GAS);
        let deployer = builder.eoa();
        builder.call(deployer, factory, create2::deploy(salt), create2::DEPLOY_GAS);
    }
    let workload =
        builder.finish("known mismatch: CREATE2 after SELFDESTRUCT of a child with storage");
    assert_parallel_always_matches(&workload, 4, 2_000);
}
