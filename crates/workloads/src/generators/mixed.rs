//! A random mix of every workload kind with deliberate conflicts and invalid transactions:
//! the input of the randomized differential tests.

use crate::{
    builder::BlockBuilder,
    contracts::{
        coinbase_probe, counter, create2, delegate,
        erc20::{self, UNIT},
        faulty, payees,
        uniswap::{self, Pool, Uniswap},
    },
    env::{self, BENEFICIARY, ETHER},
    keys::Key,
    Workload,
};
use alloy_primitives::{Address, Bytes, B256, U256};
use lanes_executor::revm::{
    context_interface::transaction::TransactionType, primitives::hardfork::SpecId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Accounts that send, receive, hold tokens and trade over and over.
const SHARED_ACCOUNTS: usize = 6;
/// Salts the CREATE2 operations draw from.
const SALTS: usize = 3;
/// Keys that may delegate (Prague).
const KEYS: usize = 4;
/// The gas limit that makes a transaction of a mixed block heavy (a tenth of its block's
/// transactions' gas limits and half a million, see `finish`).
const HEAVY_GAS: u64 = 3_000_000;

/// A block of `size` transactions drawn at random from every workload kind, on a pre-state
/// that holds all their contracts, with deliberate conflicts: a few shared accounts send and
/// receive most transactions (nonce chains, balances), tokens move among a few holders, most
/// swaps hit one pool, a counter slot is hot, the coinbase is read and paid, CREATE2 salts
/// are reused, and (under Prague) a few keys delegate, revoke and get called.
///
/// Some transactions are invalid on purpose: a nonce gap, a stale nonce, not enough balance,
/// a fee cap below the base fee, a priority fee above the fee cap, a gas limit below the
/// intrinsic gas, a wrong chain id, a gas limit equal to the whole block's (more than it has
/// left once anything ran), an EIP-7702 transaction without authorizations; and in one block
/// in four the block gas limit is too small for all of the transactions.
///
/// The fork is drawn from the seed: Shanghai, Cancun or Prague.
pub fn mixed(size: usize, seed: u64) -> Workload {
    let (spec, mut builder, mut mix) = Mix::block(seed);
    for _ in 0..size {
        mix.step(&mut builder);
    }
    let transactions = builder.transactions().len();
    mix.finish(&mut builder);
    builder.finish(format!("mixed/{transactions}/seed={seed}/{spec:?}"))
}

/// A block most of whose transactions one account sends, as an exchange or a mining pool
/// pays out: the input of the differential test of the lanes engine's split rounds, which
/// run one sender's transactions side by side from an assumed balance.
///
/// The payer is the block's beneficiary in one block of three (a pool paying from the
/// address it mines to), and has too little for all its payments in one block of four (its
/// last payments are rejected). About four transactions in five are its own: payments to new
/// and existing accounts, to itself, to contracts ([`payees`]) that return the payer's
/// balance or their own, keep the payment, forward it to an account other payments reach too
/// (the payer, the beneficiary, a contract that keeps it or returns its balance), read the
/// beneficiary's balance, or fail; calls with calldata to accounts without code;
/// contract creations; under Prague, authorizations of its own. The rest are [`mixed`]'s
/// steps from other senders, and payments to the payer. The fork is drawn as for [`mixed`].
pub fn payouts(size: usize, seed: u64) -> Workload {
    let (spec, mut builder, mut mix) = Mix::block(seed);
    let tight = builder.rng().random_bool(0.25);
    let balance = if tight {
        // About half of the payments' values (a milli-ether to 2 ether each).
        U256::from(size as u64 / 2 + 1) * U256::from(ETHER)
    } else {
        U256::from(100_000 * ETHER)
    };
    let payer = if builder.rng().random_bool(1.0 / 3.0) {
        builder.fund(BENEFICIARY, balance);
        BENEFICIARY
    } else {
        builder.eoa_with_balance(balance)
    };
    let recorder = payees::install_origin_balance(&mut builder);
    let sink = payees::install_sink(&mut builder);
    let echo = payees::install_own_balance(&mut builder);
    let forwarders = [
        payees::install_forwarder(&mut builder, payer),
        payees::install_forwarder(&mut builder, mix.shared[0]),
        payees::install_forwarder(&mut builder, BENEFICIARY),
        payees::install_forwarder(&mut builder, sink),
        payees::install_forwarder(&mut builder, sink),
        payees::install_forwarder(&mut builder, echo),
    ];
    for _ in 0..size {
        if builder.rng().random_bool(0.2) {
            if builder.rng().random_bool(0.25) {
                let from = mix.sender(&mut builder);
                let value = builder.random_milli_ether(1, 100);
                let tx = builder.new_tx(from, payer, value, Bytes::new(), 60_000);
                builder.push(tx);
            } else {
                mix.step(&mut builder);
            }
            continue;
        }
        let value = builder.random_milli_ether(1, 2_000);
        let (to, data, gas) = match builder.rng().random_range(0..100) {
            0..45 => (builder.fresh_address(), Bytes::new(), 21_000),
            45..55 => (mix.recipient(&mut builder), Bytes::new(), 60_000),
            55..60 => (payer, Bytes::new(), 21_000),
            60..70 => {
                let forwarder = forwarders[builder.rng().random_range(0..forwarders.len())];
                (forwarder, Bytes::new(), payees::GAS)
            }
            70..73 => (recorder, Bytes::new(), payees::GAS),
            73..76 => ([sink, echo][builder.rng().random_range(0..2)], Bytes::new(), payees::GAS),
            76..80 => (mix.probe, coinbase_probe::probe(), coinbase_probe::GAS),
            80..84 => (mix.faulty, faulty::touch(), 100_000),
            84..90 => {
                let data = Bytes::from(builder.rng().random::<[u8; 8]>().to_vec());
                (builder.fresh_address(), data, 60_000)
            }
            90..95 => {
                // A contract creation whose init code deploys nothing (`STOP`).
                let mut tx =
                    builder.new_tx(payer, Address::ZERO, value, Bytes::from(vec![0x00]), 60_000);
                tx.kind = lanes_executor::revm::primitives::TxKind::Create;
                builder.push(tx);
                continue;
            }
            _ if mix.delegate.is_some() => {
                // The payer carries an authorization of one of the keys.
                let key = &mix.keys[builder.rng().random_range(0..mix.keys.len())];
                let nonce = builder.next_nonce(key.address());
                let target = mix.delegate.unwrap_or_default();
                let authorization = key.authorize(env::CHAIN_ID, target, nonce);
                let to = builder.fresh_address();
                let tx = builder.new_tx_7702(
                    payer,
                    to,
                    Bytes::new(),
                    delegate::AUTHORIZING_GAS,
                    vec![authorization],
                );
                builder.push(tx);
                continue;
            }
            _ => (builder.fresh_address(), Bytes::new(), 21_000),
        };
        let tx = builder.new_tx(payer, to, value, data, gas);
        builder.push(tx);
    }
    let transactions = builder.transactions().len();
    builder.finish(format!(
        "payouts/{transactions}/seed={seed}/{spec:?}/{}{}",
        if payer == BENEFICIARY { "beneficiary" } else { "payer" },
        if tight { "/tight" } else { "" }
    ))
}

/// The contracts and accounts of a mixed block.
#[derive(Debug)]
struct Mix {
    shared: Vec<Address>,
    tokens: Vec<Address>,
    uniswap: Uniswap,
    pools: Vec<Pool>,
    counter: Address,
    faulty: Address,
    probe: Address,
    factory: Address,
    salts: Vec<B256>,
    delegate: Option<Address>,
    keys: Vec<Key>,
    funded_keys: Vec<bool>,
    whole_block: Vec<usize>,
}

impl Mix {
    /// The fork drawn from `seed` (Shanghai, Cancun or Prague), a builder for it, and the
    /// contracts and accounts of a mixed block in its pre-state.
    fn block(seed: u64) -> (SpecId, BlockBuilder, Self) {
        let spec = {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f04c);
            [SpecId::SHANGHAI, SpecId::CANCUN, SpecId::CANCUN, SpecId::PRAGUE, SpecId::PRAGUE]
                [rng.random_range(0..5)]
        };
        let mut builder = BlockBuilder::new(spec, seed);
        let mix = Self::new(&mut builder, seed);
        (spec, builder, mix)
    }

    fn new(builder: &mut BlockBuilder, seed: u64) -> Self {
        let shared: Vec<Address> = (0..SHARED_ACCOUNTS).map(|_| builder.eoa()).collect();
        let uniswap = Uniswap::install(builder);
        let provider = builder.eoa();
        let tokens: Vec<Address> = (0..4)
            .map(|i| erc20::install(builder, &format!("Mixed Token {i}"), &format!("MT{i}")))
            .collect();
        let mut pools = Vec::new();
        for pair in tokens.chunks(2) {
            let reserve_a = U256::from(builder.rng().random_range(10_000..1_000_000u64)) * UNIT;
            let reserve_b = U256::from(builder.rng().random_range(10_000..1_000_000u64)) * UNIT;
            pools.push(uniswap.create_pool(
                builder,
                (pair[0], reserve_a),
                (pair[1], reserve_b),
                provider,
            ));
        }
        for &holder in &shared {
            for &token in &tokens {
                let amount = U256::from(builder.rng().random_range(10..1_000u64)) * UNIT;
                uniswap.fund_trader(builder, token, holder, amount);
            }
        }
        let counter = counter::install(builder);
        let faulty = faulty::install(builder);
        let probe = coinbase_probe::install(builder);
        let factory = create2::install_factory(builder);
        let salts: Vec<B256> =
            (0..SALTS).map(|_| B256::from(builder.rng().random::<[u8; 32]>())).collect();
        for &salt in &salts {
            if builder.rng().random_bool(0.5) {
                let balance = builder.random_milli_ether(0, 1_000);
                create2::install_child(builder, factory, salt, U256::from(5), balance);
            }
        }
        let (delegate, keys, funded_keys) = if builder.spec().is_enabled_in(SpecId::PRAGUE) {
            let delegate = delegate::install(builder);
            let keys: Vec<Key> = (0..KEYS as u64).map(|i| Key::derive(seed, i)).collect();
            let funded: Vec<bool> = keys
                .iter()
                .map(|key| {
                    let funded = builder.rng().random_bool(0.6);
                    if funded {
                        builder.fund(key.address(), U256::from(10 * ETHER));
                    }
                    funded
                })
                .collect();
            (Some(delegate), keys, funded)
        } else {
            (None, Vec::new(), Vec::new())
        };
        Self {
            shared,
            tokens,
            uniswap,
            pools,
            counter,
            faulty,
            probe,
            factory,
            salts,
            delegate,
            keys,
            funded_keys,
            whole_block: Vec::new(),
        }
    }

    fn shared_account(&self, builder: &mut BlockBuilder) -> Address {
        self.shared[builder.rng().random_range(0..self.shared.len())]
    }

    /// A shared account most of the time, else a new funded one.
    fn sender(&self, builder: &mut BlockBuilder) -> Address {
        if builder.rng().random_bool(0.6) {
            self.shared_account(builder)
        } else {
            builder.eoa()
        }
    }

    /// Anything that can receive ether: shared accounts, the coinbase, contracts, keys'
    /// accounts, new addresses.
    fn recipient(&self, builder: &mut BlockBuilder) -> Address {
        match builder.rng().random_range(0..100) {
            0..35 => self.shared_account(builder),
            35..43 => BENEFICIARY,
            43..48 => self.counter,
            48..58 if !self.keys.is_empty() => {
                self.keys[builder.rng().random_range(0..self.keys.len())].address()
            }
            48..58 => create2::child_address(
                self.factory,
                self.salts[builder.rng().random_range(0..SALTS)],
            ),
            _ => builder.fresh_address(),
        }
    }

    fn step(&mut self, builder: &mut BlockBuilder) {
        let prague = self.delegate.is_some();
        match builder.rng().random_range(0..100) {
            0..20 => self.transfer(builder),
            20..32 => self.token_transfer(builder),
            32..44 => self.swap(builder),
            44..52 => self.count(builder),
            52..58 => self.fail(builder),
            58..64 => self.coinbase(builder),
            64..72 => self.create2(builder),
            72..80 if prague => self.eip7702(builder),
            72..80 => self.transfer(builder),
            80..90 => self.invalid(builder),
            _ => self.burst(builder),
        }
    }

    fn transfer(&self, builder: &mut BlockBuilder) {
        let from = self.sender(builder);
        let to = self.recipient(builder);
        let value = builder.random_milli_ether(0, 2_000);
        // Recipients with code may need more than 21,000 gas.
        let tx = builder.new_tx(from, to, value, Bytes::new(), 60_000);
        builder.push(tx);
    }

    fn burst(&self, builder: &mut BlockBuilder) {
        let from = self.shared_account(builder);
        for _ in 0..builder.rng().random_range(2..5) {
            let to = self.recipient(builder);
            let value = builder.random_milli_ether(0, 500);
            let tx = builder.new_tx(from, to, value, Bytes::new(), 60_000);
            builder.push(tx);
        }
    }

    fn token_transfer(&self, builder: &mut BlockBuilder) {
        let token = self.tokens[builder.rng().random_range(0..self.tokens.len())];
        let from = if builder.rng().random_bool(0.9) {
            self.shared_account(builder)
        } else {
            builder.eoa()
        };
        let to = if builder.rng().random_bool(0.6) {
            self.shared_account(builder)
        } else {
            builder.fresh_address()
        };
        // Some amounts exceed what the sender holds, or will hold after earlier transfers.
        let amount = if builder.rng().random_bool(0.8) {
            U256::from(builder.rng().random_range(1..50u64)) * UNIT
        } else {
            U256::from(builder.rng().random_range(500..2_000u64)) * UNIT
        };
        builder.call(from, token, erc20::transfer(to, amount), erc20::TRANSFER_GAS);
    }

    fn swap(&self, builder: &mut BlockBuilder) {
        let pool = if builder.rng().random_bool(0.7) { self.pools[0] } else { self.pools[1] };
        let trader = if builder.rng().random_bool(0.8) {
            self.shared_account(builder)
        } else {
            let trader = builder.eoa();
            for token in [pool.token0, pool.token1] {
                self.uniswap.fund_trader(builder, token, trader, U256::from(1_000) * UNIT);
            }
            trader
        };
        let (token_in, token_out) = if builder.rng().random_bool(0.5) {
            (pool.token0, pool.token1)
        } else {
            (pool.token1, pool.token0)
        };
        let amount_in = U256::from(builder.rng().random_range(1..200u64)) * UNIT;
        // Half of the swaps demand nearly what the pre-state reserves pay: whether they revert
        // depends on the swaps before them.
        let min_out = if builder.rng().random_bool(0.5) {
            let (reserve0, reserve1, _) =
                uniswap::unpack_reserves(builder.storage(pool.pair, uniswap::RESERVES_SLOT));
            let (reserve_in, reserve_out) =
                if token_in == pool.token0 { (reserve0, reserve1) } else { (reserve1, reserve0) };
            let tolerance = U256::from(builder.rng().random_range(990..=1_000u64));
            uniswap::amount_out(amount_in, reserve_in, reserve_out) * tolerance / U256::from(1_000)
        } else {
            U256::ZERO
        };
        let to = if builder.rng().random_bool(0.8) { trader } else { self.shared_account(builder) };
        let data = uniswap::swap_exact_tokens_for_tokens(
            amount_in,
            min_out,
            &[token_in, token_out],
            to,
            env::TIMESTAMP + 60,
        );
        builder.call(trader, self.uniswap.router, data, uniswap::SWAP_GAS);
    }

    fn count(&self, builder: &mut BlockBuilder) {
        let from = self.sender(builder);
        let data = if builder.rng().random_bool(0.7) { counter::hit() } else { counter::bump() };
        builder.call(from, self.counter, data, counter::GAS);
    }

    fn fail(&self, builder: &mut BlockBuilder) {
        let from = self.sender(builder);
        let (value, data, gas) = match builder.rng().random_range(0..6) {
            0 => (U256::ZERO, faulty::refuse(U256::from(7)), 100_000),
            1 => (U256::ZERO, faulty::require_false(), 100_000),
            2 => (U256::ZERO, faulty::burn(), builder.rng().random_range(50_000..150_000)),
            3 => (U256::ZERO, faulty::halt(), 100_000),
            4 => (builder.random_milli_ether(1, 10), faulty::touch(), 100_000),
            _ => (U256::ZERO, faulty::touch(), 21_064 + builder.rng().random_range(0..3_000)),
        };
        let tx = builder.new_tx(from, self.faulty, value, data, gas);
        builder.push(tx);
    }

    fn coinbase(&self, builder: &mut BlockBuilder) {
        let from = self.sender(builder);
        match builder.rng().random_range(0..3) {
            0 => {
                builder.call(from, self.probe, coinbase_probe::probe(), coinbase_probe::GAS);
            }
            1 => {
                let value = builder.random_milli_ether(1, 100);
                let tx = builder.new_tx(
                    from,
                    self.probe,
                    value,
                    coinbase_probe::tip(),
                    coinbase_probe::GAS,
                );
                builder.push(tx);
            }
            _ => {
                let value = builder.random_milli_ether(1, 100);
                builder.transfer(from, BENEFICIARY, value);
            }
        }
    }

    fn create2(&self, builder: &mut BlockBuilder) {
        let from = self.sender(builder);
        let salt = self.salts[builder.rng().random_range(0..SALTS)];
        let child = create2::child_address(self.factory, salt);
        let heir = self.recipient(builder);
        let value = if builder.rng().random_bool(0.3) {
            builder.random_milli_ether(1, 100)
        } else {
            U256::ZERO
        };
        let (to, value, data, gas) = match builder.rng().random_range(0..4) {
            0 => (self.factory, value, create2::deploy(salt), create2::DEPLOY_GAS),
            1 => {
                (self.factory, value, create2::deploy_and_destroy(salt, heir), create2::DEPLOY_GAS)
            }
            2 => (child, U256::ZERO, create2::destroy(heir), create2::CALL_GAS),
            _ => (child, U256::ZERO, create2::ping(), create2::CALL_GAS),
        };
        let tx = builder.new_tx(from, to, value, data, gas);
        builder.push(tx);
    }

    fn eip7702(&self, builder: &mut BlockBuilder) {
        let delegate = self.delegate.expect("EIP-7702 steps only under Prague");
        let index = builder.rng().random_range(0..self.keys.len());
        let key = &self.keys[index];
        let authority = key.address();
        match builder.rng().random_range(0..10) {
            0..4 => {
                let self_sponsored = self.funded_keys[index] && builder.rng().random_bool(0.4);
                let sender = if self_sponsored { authority } else { self.sender(builder) };
                let mut nonce = builder.next_nonce(authority) + u64::from(self_sponsored);
                if builder.rng().random_bool(0.15) {
                    nonce += 1 + builder.rng().random_range(0..2);
                }
                let target = if builder.rng().random_bool(0.85) { delegate } else { Address::ZERO };
                let (to, data) = if builder.rng().random_bool(0.6) {
                    (authority, delegate::execute())
                } else {
                    (self.recipient(builder), Bytes::new())
                };
                let chain_id = if builder.rng().random_bool(0.8) { env::CHAIN_ID } else { 0 };
                let authorization = key.authorize(chain_id, target, nonce);
                let tx = builder.new_tx_7702(
                    sender,
                    to,
                    data,
                    delegate::AUTHORIZING_GAS,
                    vec![authorization],
                );
                builder.push(tx);
            }
            4..8 => {
                let from = self.sender(builder);
                let value = if builder.rng().random_bool(0.3) {
                    builder.random_milli_ether(1, 10)
                } else {
                    U256::ZERO
                };
                let data =
                    if builder.rng().random_bool(0.8) { delegate::execute() } else { Bytes::new() };
                let tx = builder.new_tx(from, authority, value, data, delegate::CALL_GAS);
                builder.push(tx);
            }
            _ if self.funded_keys[index] => {
                let to = self.recipient(builder);
                let value = builder.random_milli_ether(1, 100);
                let tx = builder.new_tx(authority, to, value, Bytes::new(), 60_000);
                builder.push(tx);
            }
            _ => self.transfer(builder),
        }
    }

    fn invalid(&mut self, builder: &mut BlockBuilder) {
        let prague = self.delegate.is_some();
        let kinds = if prague { 9 } else { 8 };
        let fresh = builder.eoa();
        let to = builder.fresh_address();
        let value = builder.random_milli_ether(1, 10);
        let mut tx = builder.new_tx(fresh, to, value, Bytes::new(), 21_000);
        match builder.rng().random_range(0..kinds) {
            0 | 1 => {
                // A nonce gap, or a nonce already used, on a shared account.
                let sender = self.shared_account(builder);
                tx = builder.new_tx(sender, to, value, Bytes::new(), 21_000);
                if tx.nonce > 0 && builder.rng().random_bool(0.5) {
                    tx.nonce -= 1;
                } else {
                    tx.nonce += 1 + builder.rng().random_range(0..3);
                }
            }
            2 => {
                let poor = builder.eoa_with_balance(U256::from(ETHER / 1_000));
                tx = builder.new_tx(poor, to, U256::from(ETHER), Bytes::new(), 21_000);
            }
            3 => {
                tx.tx_type = TransactionType::Legacy as u8;
                tx.gas_price = env::BASE_FEE as u128 - 1;
                tx.gas_priority_fee = None;
            }
            4 => {
                tx.tx_type = TransactionType::Eip1559 as u8;
                tx.gas_price = 2 * env::BASE_FEE as u128;
                tx.gas_priority_fee = Some(tx.gas_price + 1);
            }
            5 => tx.gas_limit = 20_000,
            6 => tx.chain_id = Some(5),
            7 => self.whole_block.push(builder.transactions().len()),
            _ => {
                tx = builder.new_tx_7702(fresh, to, Bytes::new(), 100_000, Vec::new());
            }
        }
        builder.push_untracked(tx);
    }

    /// Sets the block gas limit (too small for everything in one block out of four) and the
    /// gas limit of the transactions that ask for the whole block.
    fn finish(&self, builder: &mut BlockBuilder) {
        // One block in three has a transaction allowed a large share of the block's gas, which
        // the parallel engine starts before the others (`Predictions::heavy`), wherever it
        // is and whatever it conflicts with.
        let count = builder.transactions().len();
        if count > 1 && builder.rng().random_bool(1.0 / 3.0) {
            let heavy = builder.rng().random_range(0..count);
            if !self.whole_block.contains(&heavy) {
                let tx = &mut builder.transactions_mut()[heavy];
                tx.gas_limit = tx.gas_limit.max(HEAVY_GAS);
            }
        }
        let sum: u64 = builder
            .transactions()
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.whole_block.contains(i))
            .map(|(_, tx)| tx.gas_limit)
            .sum();
        let gas_limit = if builder.rng().random_bool(0.25) {
            (sum / 100 * builder.rng().random_range(30..90)).max(21_000)
        } else {
            sum.max(env::MIN_BLOCK_GAS_LIMIT)
        };
        builder.set_gas_limit(gas_limit);
        for &i in &self.whole_block {
            builder.transactions_mut()[i].gas_limit = gas_limit;
        }
    }
}
