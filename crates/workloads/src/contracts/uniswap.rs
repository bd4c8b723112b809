//! Uniswap V2: the core's factory and pairs, the periphery's `UniswapV2Router02`.
//!
//! Pools are not created at block time: each pair's runtime code is put in the pre-state at the
//! address the factory would have created it at (CREATE2 from the factory with salt
//! `keccak256(token0 . token1)` and the pair's init code hash, which the router hard-codes), and
//! its storage is set as `mint` would have left it. The router's immutables (`factory`, `WETH`)
//! are written into its code.
//!
//! `UniswapV2Pair` storage layout (solc 0.5.16; `UniswapV2ERC20` comes first):
//!
//! | slot | variable |
//! |---|---|
//! | 0 | `uint totalSupply` (liquidity tokens) |
//! | 1 | `mapping(address => uint) balanceOf` |
//! | 2 | `mapping(address => mapping(address => uint)) allowance` |
//! | 3 | `bytes32 DOMAIN_SEPARATOR` (left zero: only `permit` reads it) |
//! | 4 | `mapping(address => uint) nonces` |
//! | 5 | `address factory` |
//! | 6 | `address token0` (the lower address) |
//! | 7 | `address token1` |
//! | 8 | `uint112 reserve0`, `uint112 reserve1`, `uint32 blockTimestampLast`, packed from the low bits |
//! | 9, 10 | `price0CumulativeLast`, `price1CumulativeLast` |
//! | 11 | `uint kLast` (zero: protocol fee off) |
//! | 12 | `uint unlocked` (must be 1, or every call fails with `LOCKED`) |
//!
//! `UniswapV2Factory` storage layout: slot 0 `feeTo` (zero: fee off), 1 `feeToSetter`,
//! 2 `mapping(address => mapping(address => address)) getPair`, 3 `address[] allPairs`.
//!
//! The tokens are OpenZeppelin ERC-20s ([`super::erc20`]); the pair's token balances equal its
//! reserves. WETH is only an address: the workloads swap tokens for tokens.

use super::erc20;
use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
    env,
    slots::{address_mapping_slot, address_word, array_element_slot, nested_mapping_slot},
};
use alloy_primitives::{b256, keccak256, Address, Bytes, B256, U256};

/// The pair init code hash `UniswapV2Library.pairFor` hard-codes.
pub const PAIR_INIT_CODE_HASH: B256 =
    b256!("0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f");
/// Liquidity tokens locked at address zero by the first `mint`.
pub const MINIMUM_LIQUIDITY: u64 = 1_000;
/// A generous gas limit for a router swap over one pool (it uses about 100,000 to 130,000).
pub const SWAP_GAS: u64 = 250_000;
/// Slot of the pair's packed reserves.
pub const RESERVES_SLOT: U256 = U256::from_limbs([8, 0, 0, 0]);

/// A Uniswap V2 deployment: factory and router.
#[derive(Clone, Copy, Debug)]
pub struct Uniswap {
    /// The factory.
    pub factory: Address,
    /// The router (`UniswapV2Router02`).
    pub router: Address,
    /// The router's WETH address (no code).
    pub weth: Address,
}

/// One pool.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    /// The pair contract.
    pub pair: Address,
    /// The lower token address.
    pub token0: Address,
    /// The higher token address.
    pub token1: Address,
}

impl Uniswap {
    /// Installs a factory (no pairs yet) and a router.
    pub fn install(builder: &mut BlockBuilder) -> Self {
        let fee_to_setter = builder.eoa();
        let factory = builder.install(assets::uniswap_v2_factory(), 1, U256::ZERO);
        builder.set_storage(factory, U256::from(1), address_word(fee_to_setter));
        let weth = builder.fresh_address();
        let router = builder.install(&assets::uniswap_v2_router02(factory, weth), 1, U256::ZERO);
        Self { factory, router, weth }
    }

    /// The address of the pair of `token_a` and `token_b` (in either order).
    pub fn pair_address(&self, token_a: Address, token_b: Address) -> Address {
        let (token0, token1) = sort(token_a, token_b);
        let mut packed = [0u8; 40];
        packed[..20].copy_from_slice(token0.as_slice());
        packed[20..].copy_from_slice(token1.as_slice());
        self.factory.create2(keccak256(packed), PAIR_INIT_CODE_HASH)
    }

    /// Creates the pool of `token_a` and `token_b` in the pre-state with `reserve_a` and
    /// `reserve_b`, as if `provider` had added that liquidity in an earlier block.
    pub fn create_pool(
        &self,
        builder: &mut BlockBuilder,
        (token_a, reserve_a): (Address, U256),
        (token_b, reserve_b): (Address, U256),
        provider: Address,
    ) -> Pool {
        let (token0, token1) = sort(token_a, token_b);
        let (reserve0, reserve1) =
            if token0 == token_a { (reserve_a, reserve_b) } else { (reserve_b, reserve_a) };
        assert!(reserve0 < U256::from(1) << 112 && reserve1 < U256::from(1) << 112);
        let pair = self.pair_address(token0, token1);
        builder.install_at(pair, assets::uniswap_v2_pair(), 1, U256::ZERO);

        let liquidity = (reserve0 * reserve1).root(2);
        let minimum = U256::from(MINIMUM_LIQUIDITY);
        builder.set_storage(pair, U256::ZERO, liquidity);
        builder.set_storage(pair, address_mapping_slot(Address::ZERO, U256::from(1)), minimum);
        builder.set_storage(
            pair,
            address_mapping_slot(provider, U256::from(1)),
            liquidity - minimum,
        );
        builder.set_storage(pair, U256::from(5), address_word(self.factory));
        builder.set_storage(pair, U256::from(6), address_word(token0));
        builder.set_storage(pair, U256::from(7), address_word(token1));
        let last_update = U256::from(env::TIMESTAMP - 120);
        builder.set_storage(pair, RESERVES_SLOT, reserve0 | reserve1 << 112 | last_update << 224);
        builder.set_storage(pair, U256::from(12), U256::from(1));

        erc20::mint(builder, token0, pair, reserve0);
        erc20::mint(builder, token1, pair, reserve1);

        // The factory's records: getPair both ways, allPairs, and one CREATE2 more (nonce).
        let pair_word = address_word(pair);
        builder.set_storage(
            self.factory,
            nested_mapping_slot(token0, token1, U256::from(2)),
            pair_word,
        );
        builder.set_storage(
            self.factory,
            nested_mapping_slot(token1, token0, U256::from(2)),
            pair_word,
        );
        let count = builder.storage(self.factory, U256::from(3));
        builder.set_storage(self.factory, array_element_slot(U256::from(3), count.to()), pair_word);
        builder.set_storage(self.factory, U256::from(3), count + U256::from(1));
        let nonce = builder.next_nonce(self.factory);
        builder.set_nonce(self.factory, nonce + 1);

        Pool { pair, token0, token1 }
    }

    /// Gives `trader` `amount` of `token` and lets the router spend all of it.
    pub fn fund_trader(
        &self,
        builder: &mut BlockBuilder,
        token: Address,
        trader: Address,
        amount: U256,
    ) {
        erc20::mint(builder, token, trader, amount);
        erc20::approve(builder, token, trader, self.router, U256::MAX);
    }
}

/// The two tokens in the order the pair stores them.
pub fn sort(a: Address, b: Address) -> (Address, Address) {
    assert_ne!(a, b, "a pool needs two different tokens");
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Calldata of the router's `swapExactTokensForTokens(amountIn, amountOutMin, path, to,
/// deadline)`.
pub fn swap_exact_tokens_for_tokens(
    amount_in: U256,
    amount_out_min: U256,
    path: &[Address],
    to: Address,
    deadline: u64,
) -> Bytes {
    let mut call =
        Calldata::new("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")
            .uint(amount_in)
            .uint(amount_out_min)
            .uint(U256::from(5 * 32))
            .address(to)
            .uint(U256::from(deadline))
            .uint(U256::from(path.len()));
    for token in path {
        call = call.address(*token);
    }
    call.build()
}

/// What a pool with `reserve_in` and `reserve_out` pays for `amount_in` (0.3% fee), as
/// `UniswapV2Library.getAmountOut` computes it.
pub fn amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> U256 {
    let with_fee = amount_in * U256::from(997);
    with_fee * reserve_out / (reserve_in * U256::from(1000) + with_fee)
}

/// Splits the packed reserves word into `(reserve0, reserve1, blockTimestampLast)`.
pub fn unpack_reserves(word: U256) -> (U256, U256, u32) {
    let mask = (U256::from(1) << 112) - U256::from(1);
    (word & mask, (word >> 112usize) & mask, (word >> 224usize).to::<u32>())
}

/// Topic of the pair's `Swap(address indexed sender, uint amount0In, uint amount1In,
/// uint amount0Out, uint amount1Out, address indexed to)`.
pub fn swap_topic() -> B256 {
    event_topic("Swap(address,uint256,uint256,uint256,uint256,address)")
}

/// Topic of the pair's `Sync(uint112 reserve0, uint112 reserve1)`.
pub fn sync_topic() -> B256 {
    event_topic("Sync(uint112,uint112)")
}
