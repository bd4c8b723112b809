//! Uniswap V2 swaps through the router: on independent pools, or all on one pool.

use super::name;
use crate::{
    builder::BlockBuilder,
    contracts::{
        erc20::{self, UNIT},
        uniswap::{self, Pool, Uniswap},
    },
    env, Workload,
};
use alloy_primitives::{Address, U256};
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;

/// How long after the block's timestamp the swaps' deadline is.
const DEADLINE: u64 = 600;

/// A pool of two new tokens with random reserves (100,000 to 10,000,000 tokens each).
fn new_pool(builder: &mut BlockBuilder, uniswap: &Uniswap, provider: Address, i: usize) -> Pool {
    let token_a = erc20::install(builder, &format!("Pool {i} Token A"), "LPA");
    let token_b = erc20::install(builder, &format!("Pool {i} Token B"), "LPB");
    let reserve_a = U256::from(builder.rng().random_range(100_000..10_000_000u64)) * UNIT;
    let reserve_b = U256::from(builder.rng().random_range(100_000..10_000_000u64)) * UNIT;
    uniswap.create_pool(builder, (token_a, reserve_a), (token_b, reserve_b), provider)
}

/// One swap of `pool`'s tokens by a new trader through the router, in a random direction.
/// With `exact_min_out`, the swap asks for exactly what the pool's pre-state reserves pay, so
/// it reverts if it sees any other reserves.
fn swap(builder: &mut BlockBuilder, uniswap: &Uniswap, pool: &Pool, exact_min_out: bool) {
    let trader = builder.eoa();
    let (token_in, token_out) = if builder.rng().random_bool(0.5) {
        (pool.token0, pool.token1)
    } else {
        (pool.token1, pool.token0)
    };
    let amount_in = U256::from(builder.rng().random_range(1..1_000u64)) * UNIT;
    uniswap.fund_trader(builder, token_in, trader, amount_in * U256::from(2));
    let min_out = if exact_min_out {
        let (reserve0, reserve1, _) =
            uniswap::unpack_reserves(builder.storage(pool.pair, uniswap::RESERVES_SLOT));
        let (reserve_in, reserve_out) =
            if token_in == pool.token0 { (reserve0, reserve1) } else { (reserve1, reserve0) };
        uniswap::amount_out(amount_in, reserve_in, reserve_out)
    } else {
        U256::ZERO
    };
    let data = uniswap::swap_exact_tokens_for_tokens(
        amount_in,
        min_out,
        &[token_in, token_out],
        trader,
        env::TIMESTAMP + DEADLINE,
    );
    builder.call(trader, uniswap.router, data, uniswap::SWAP_GAS);
}

/// `size` Uniswap V2 swaps (`swapExactTokensForTokens` through `UniswapV2Router02`), each on
/// its own pool of its own two tokens, by its own trader: no two transactions share a written
/// location. Each swap demands exactly the output the pool's reserves pay. Cancun.
pub fn uniswap(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let uniswap = Uniswap::install(&mut builder);
    let provider = builder.eoa();
    for i in 0..size {
        let pool = new_pool(&mut builder, &uniswap, provider, i);
        swap(&mut builder, &uniswap, &pool, true);
    }
    builder.finish(name("uniswap", size, seed))
}

/// `size` Uniswap V2 swaps on one shared pool by distinct traders in random directions (no
/// minimum output): every swap reads and writes the pool's reserves. Cancun.
pub fn uniswap_shared_pool(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::CANCUN, seed);
    let uniswap = Uniswap::install(&mut builder);
    let provider = builder.eoa();
    let pool = new_pool(&mut builder, &uniswap, provider, 0);
    for _ in 0..size {
        swap(&mut builder, &uniswap, &pool, false);
    }
    builder.finish(name("uniswap_shared_pool", size, seed))
}
