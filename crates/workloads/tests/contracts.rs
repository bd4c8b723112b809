//! The compiled contracts behave as their installation in the pre-state assumes: the storage
//! layouts, the router's immutables, the CREATE2 addresses, the signed authorizations.

mod common;

use alloy_primitives::{Address, B256, U256};
use common::{outcome, run_all_engines};
use lanes_executor::revm::primitives::hardfork::SpecId;
use lanes_workloads::{
    abi::{address_at, word_at, Calldata},
    assets,
    contracts::{
        create2,
        erc20::{self, UNIT},
        uniswap::{self, Uniswap},
    },
    keys::Key,
    slots::short_string,
    BlockBuilder,
};

fn view(builder: &mut BlockBuilder, to: Address, signature: &str) -> usize {
    let caller = builder.eoa();
    builder.call(caller, to, Calldata::new(signature).build(), 100_000)
}

#[test]
fn erc20_layout_matches_the_token() {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, 1);
    let token = erc20::install(&mut builder, "Lanes Token", "LT");
    let holder = builder.eoa();
    let other = builder.eoa();
    erc20::mint(&mut builder, token, holder, U256::from(1_000) * UNIT);
    erc20::mint(&mut builder, token, other, U256::from(5) * UNIT);
    let caller = builder.eoa();
    let balance = builder.call(caller, token, erc20::balance_of(holder), 100_000);
    let supply = view(&mut builder, token, "totalSupply()");
    let name = view(&mut builder, token, "name()");
    let transfer =
        builder.call(holder, token, erc20::transfer(other, U256::from(7) * UNIT), 100_000);
    let workload = builder.finish("erc20 layout");
    let output = run_all_engines(&workload);

    assert_eq!(word_at(&outcome(&output, balance).output, 0), U256::from(1_000) * UNIT);
    assert_eq!(word_at(&outcome(&output, supply).output, 0), U256::from(1_005) * UNIT);
    let name = &outcome(&output, name).output;
    assert_eq!(word_at(name, 1), U256::from(11), "name length");
    assert_eq!(&name[64..75], b"Lanes Token");
    assert_eq!(
        short_string("LT"),
        U256::from_be_slice(&[
            b'L', b'T', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 4
        ])
    );

    let transfer = outcome(&output, transfer);
    assert!(transfer.status.is_success(), "{transfer:?}");
    assert_eq!(transfer.logs.len(), 1);
    assert_eq!(transfer.logs[0].topics()[0], erc20::transfer_topic());
    let slots = &output.changes.accounts[&token].storage;
    assert_eq!(slots[&erc20::balance_slot(holder)], U256::from(993) * UNIT);
    assert_eq!(slots[&erc20::balance_slot(other)], U256::from(12) * UNIT);
}

#[test]
fn uniswap_pool_in_the_pre_state_is_consistent() {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, 2);
    let uniswap = Uniswap::install(&mut builder);
    let token_a = erc20::install(&mut builder, "A", "A");
    let token_b = erc20::install(&mut builder, "B", "B");
    let provider = builder.eoa();
    let reserve_a = U256::from(1_000_000) * UNIT;
    let reserve_b = U256::from(2_000_000) * UNIT;
    let pool =
        uniswap.create_pool(&mut builder, (token_a, reserve_a), (token_b, reserve_b), provider);
    let factory = view(&mut builder, uniswap.router, "factory()");
    let weth = view(&mut builder, uniswap.router, "WETH()");
    let token0 = view(&mut builder, pool.pair, "token0()");
    let pair_factory = view(&mut builder, pool.pair, "factory()");
    let reserves = view(&mut builder, pool.pair, "getReserves()");
    let caller = builder.eoa();
    let get_pair = builder.call(
        caller,
        uniswap.factory,
        Calldata::new("getPair(address,address)").address(token_b).address(token_a).build(),
        100_000,
    );
    let pairs = view(&mut builder, uniswap.factory, "allPairsLength()");
    let trader = builder.eoa();
    let amount_in = U256::from(1_000) * UNIT;
    uniswap.fund_trader(&mut builder, token_a, trader, amount_in);
    let expected = uniswap::amount_out(amount_in, reserve_a, reserve_b);
    let swap = builder.call(
        trader,
        uniswap.router,
        uniswap::swap_exact_tokens_for_tokens(
            amount_in,
            expected,
            &[token_a, token_b],
            trader,
            u64::MAX,
        ),
        uniswap::SWAP_GAS,
    );
    let workload = builder.finish("uniswap layout");
    let output = run_all_engines(&workload);

    assert_eq!(address_at(&outcome(&output, factory).output, 0), uniswap.factory);
    assert_eq!(address_at(&outcome(&output, weth).output, 0), uniswap.weth);
    assert_eq!(address_at(&outcome(&output, token0).output, 0), pool.token0);
    assert_eq!(address_at(&outcome(&output, pair_factory).output, 0), uniswap.factory);
    assert_eq!(address_at(&outcome(&output, get_pair).output, 0), pool.pair);
    assert_eq!(word_at(&outcome(&output, pairs).output, 0), U256::from(1));
    let reserves = &outcome(&output, reserves).output;
    let (r0, r1) =
        if pool.token0 == token_a { (reserve_a, reserve_b) } else { (reserve_b, reserve_a) };
    assert_eq!((word_at(reserves, 0), word_at(reserves, 1)), (r0, r1));

    let swap = outcome(&output, swap);
    assert!(swap.status.is_success(), "swap failed: {swap:?}");
    assert!(swap
        .logs
        .iter()
        .any(|l| l.address == pool.pair && l.topics()[0] == uniswap::swap_topic()));
    assert!(swap
        .logs
        .iter()
        .any(|l| l.address == pool.pair && l.topics()[0] == uniswap::sync_topic()));
    let received = output.changes.accounts[&token_b].storage[&erc20::balance_slot(trader)];
    assert_eq!(received, expected);
    let (new0, new1, _) = uniswap::unpack_reserves(
        output.changes.accounts[&pool.pair].storage[&uniswap::RESERVES_SLOT],
    );
    let (new_a, new_b) = if pool.token0 == token_a { (new0, new1) } else { (new1, new0) };
    assert_eq!((new_a, new_b), (reserve_a + amount_in, reserve_b - expected));
}

#[test]
fn create2_factory_deploys_where_child_address_says() {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, 3);
    let factory = create2::install_factory(&mut builder);
    let salt = B256::repeat_byte(0x42);
    let sender = builder.eoa();
    let deploy = builder.call(sender, factory, create2::deploy(salt), create2::DEPLOY_GAS);
    let workload = builder.finish("create2 address");
    let output = run_all_engines(&workload);
    let deploy = outcome(&output, deploy);
    assert!(deploy.status.is_success());
    let child = create2::child_address(factory, salt);
    assert_eq!(address_at(&deploy.output, 0), child);
    let change = &output.changes.accounts[&child];
    assert_eq!(change.info.expect("child exists").code_hash, assets::child().hash);
    assert_eq!(change.storage[&create2::COUNTER_SLOT], U256::from(1));
}

#[test]
fn signed_authorizations_recover_to_the_key() {
    for index in 0..8 {
        let key = Key::derive(99, index);
        let signed = key.authorize(1, Address::repeat_byte(7), index);
        assert_eq!(signed.recover_authority().expect("valid signature"), key.address());
    }
}
