//! Building a workload: its pre-state, its accounts and its transactions in block order.
//!
//! [`BlockBuilder`] hands out fresh addresses derived from the seed, funds accounts, installs
//! contract code and storage in the pre-state, and keeps track of each sender's next nonce
//! (EIP-7702 authorizations included), so that generators only say who calls what.
//!
//! Fees: every transaction pays the base fee ([`env::BASE_FEE`]) plus a priority fee drawn
//! between 0.1 and 3 gwei; half of them (at random) are legacy transactions (gas price = base
//! fee + tip), the others EIP-1559 transactions (max fee = 2 × base fee + tip).

use crate::{
    assets::Code,
    env::{self, ETHER, GWEI},
    Workload,
};
use alloy_primitives::{keccak256, map::HashMap, Address, Bytes, TxKind, U256};
use lanes_executor::{
    revm::{
        context::TxEnv,
        context_interface::{
            either::Either,
            transaction::{SignedAuthorization, TransactionType},
        },
        primitives::hardfork::SpecId,
    },
    Block,
};
use lanes_state::{InMemoryState, MemoryAccount};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The balance [`BlockBuilder::eoa`] gives a new account: 1,000 ether.
pub const DEFAULT_BALANCE: u128 = 1_000 * ETHER;
/// Gas of a plain ether transfer.
pub const TRANSFER_GAS: u64 = 21_000;

/// Builds one [`Workload`].
#[derive(Debug)]
pub struct BlockBuilder {
    spec: SpecId,
    seed: u64,
    rng: ChaCha8Rng,
    state: InMemoryState,
    transactions: Vec<TxEnv>,
    nonces: HashMap<Address, u64>,
    next_account: u64,
    gas_limit: Option<u64>,
}

impl BlockBuilder {
    /// An empty block for `spec` whose randomness comes from `seed`. The pre-state holds the
    /// beneficiary with [`env::BENEFICIARY_BALANCE`].
    pub fn new(spec: SpecId, seed: u64) -> Self {
        let mut state = InMemoryState::new();
        state.insert_account(
            env::BENEFICIARY,
            MemoryAccount::with_balance(U256::from(env::BENEFICIARY_BALANCE)),
        );
        Self {
            spec,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            state,
            transactions: Vec::new(),
            nonces: HashMap::default(),
            next_account: 0,
            gas_limit: None,
        }
    }

    /// The fork rules of the block.
    pub fn spec(&self) -> SpecId {
        self.spec
    }

    /// The seed the builder was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The builder's random number generator.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The pre-state built so far.
    pub fn state(&self) -> &InMemoryState {
        &self.state
    }

    /// The transactions pushed so far.
    pub fn transactions(&self) -> &[TxEnv] {
        &self.transactions
    }

    /// Mutable access to the transactions pushed so far (nonces are not tracked again).
    pub fn transactions_mut(&mut self) -> &mut [TxEnv] {
        &mut self.transactions
    }

    /// A new address that no account of the pre-state has.
    pub fn fresh_address(&mut self) -> Address {
        loop {
            let mut preimage = b"lanes-workloads/account".to_vec();
            preimage.extend_from_slice(&self.seed.to_be_bytes());
            preimage.extend_from_slice(&self.next_account.to_be_bytes());
            self.next_account += 1;
            let address = Address::from_slice(&keccak256(&preimage)[12..]);
            if self.state.get(&address).is_none() && address != env::BENEFICIARY {
                return address;
            }
        }
    }

    /// A new externally owned account with [`DEFAULT_BALANCE`].
    pub fn eoa(&mut self) -> Address {
        self.eoa_with_balance(U256::from(DEFAULT_BALANCE))
    }

    /// A new externally owned account with `balance` (not in the pre-state when zero).
    pub fn eoa_with_balance(&mut self, balance: U256) -> Address {
        let address = self.fresh_address();
        if !balance.is_zero() {
            self.fund(address, balance);
        }
        address
    }

    /// Sets the balance of `address`, creating the account if needed.
    pub fn fund(&mut self, address: Address, balance: U256) {
        match self.state.get_mut(&address) {
            Some(account) => account.balance = balance,
            None => self.state.insert_account(address, MemoryAccount::with_balance(balance)),
        }
    }

    /// Installs `code` at a new address with `nonce` and `balance`.
    pub fn install(&mut self, code: &Code, nonce: u64, balance: U256) -> Address {
        let address = self.fresh_address();
        self.install_at(address, code, nonce, balance);
        address
    }

    /// Installs `code` at `address` with `nonce` and `balance` (replacing any account there).
    pub fn install_at(&mut self, address: Address, code: &Code, nonce: u64, balance: U256) {
        self.state.insert_account(
            address,
            MemoryAccount {
                balance,
                nonce,
                code: code.bytecode.clone(),
                code_hash: code.hash,
                storage: HashMap::default(),
            },
        );
    }

    /// The pre-state value of a storage slot.
    pub fn storage(&self, address: Address, slot: U256) -> U256 {
        self.state.get(&address).and_then(|a| a.storage.get(&slot).copied()).unwrap_or_default()
    }

    /// Sets a storage slot of an existing account in the pre-state.
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        let account = self
            .state
            .get_mut(&address)
            .unwrap_or_else(|| panic!("set_storage: no account at {address}"));
        if value.is_zero() {
            account.storage.remove(&slot);
        } else {
            account.storage.insert(slot, value);
        }
    }

    /// Sets the pre-state nonce of an existing account.
    pub fn set_nonce(&mut self, address: Address, nonce: u64) {
        self.state
            .get_mut(&address)
            .unwrap_or_else(|| panic!("set_nonce: no account at {address}"))
            .nonce = nonce;
        self.nonces.remove(&address);
    }

    /// The nonce the next transaction of `sender` must carry, given the transactions pushed
    /// so far (assuming they are all valid).
    pub fn next_nonce(&self, sender: Address) -> u64 {
        self.nonces
            .get(&sender)
            .copied()
            .unwrap_or_else(|| self.state.get(&sender).map_or(0, |a| a.nonce))
    }

    /// A transaction from `from` to `to` with the sender's next nonce and random fees (legacy
    /// or EIP-1559), not yet pushed.
    pub fn new_tx(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        data: Bytes,
        gas_limit: u64,
    ) -> TxEnv {
        let tip = self.rng.random_range(1..=30u128) * GWEI / 10;
        let base_fee = env::BASE_FEE as u128;
        let (tx_type, gas_price, gas_priority_fee) = if self.rng.random_bool(0.5) {
            (TransactionType::Legacy, base_fee + tip, None)
        } else {
            (TransactionType::Eip1559, 2 * base_fee + tip, Some(tip))
        };
        TxEnv {
            tx_type: tx_type as u8,
            caller: from,
            gas_limit,
            gas_price,
            kind: TxKind::Call(to),
            value,
            data,
            nonce: self.next_nonce(from),
            chain_id: Some(env::CHAIN_ID),
            gas_priority_fee,
            ..Default::default()
        }
    }

    /// An EIP-7702 transaction (type 4) carrying `authorizations`, not yet pushed.
    pub fn new_tx_7702(
        &mut self,
        from: Address,
        to: Address,
        data: Bytes,
        gas_limit: u64,
        authorizations: Vec<SignedAuthorization>,
    ) -> TxEnv {
        let mut tx = self.new_tx(from, to, U256::ZERO, data, gas_limit);
        if tx.gas_priority_fee.is_none() {
            let tip = tx.gas_price - env::BASE_FEE as u128;
            tx.gas_price = 2 * env::BASE_FEE as u128 + tip;
            tx.gas_priority_fee = Some(tip);
        }
        tx.tx_type = TransactionType::Eip7702 as u8;
        tx.authorization_list = authorizations.into_iter().map(Either::Left).collect();
        tx
    }

    /// Appends `tx` and returns its index. The sender's nonce, and those of the authorities
    /// of its authorizations, advance as they will when the transaction is valid.
    pub fn push(&mut self, tx: TxEnv) -> usize {
        if tx.nonce == self.next_nonce(tx.caller) {
            self.nonces.insert(tx.caller, tx.nonce + 1);
            for authorization in &tx.authorization_list {
                let Either::Left(signed) = authorization else { continue };
                let chain_id = signed.inner().chain_id;
                if chain_id != U256::ZERO && chain_id != U256::from(env::CHAIN_ID) {
                    continue;
                }
                let Ok(authority) = signed.recover_authority() else { continue };
                let nonce = self.next_nonce(authority);
                if signed.inner().nonce == nonce {
                    self.nonces.insert(authority, nonce + 1);
                }
            }
        }
        self.push_untracked(tx)
    }

    /// Appends `tx` without advancing any nonce (for transactions meant to be invalid).
    pub fn push_untracked(&mut self, tx: TxEnv) -> usize {
        self.transactions.push(tx);
        self.transactions.len() - 1
    }

    /// Pushes a call from `from` to `to` with `data`, no value.
    pub fn call(&mut self, from: Address, to: Address, data: Bytes, gas_limit: u64) -> usize {
        let tx = self.new_tx(from, to, U256::ZERO, data, gas_limit);
        self.push(tx)
    }

    /// Pushes a plain ether transfer (21,000 gas).
    pub fn transfer(&mut self, from: Address, to: Address, value: U256) -> usize {
        let tx = self.new_tx(from, to, value, Bytes::new(), TRANSFER_GAS);
        self.push(tx)
    }

    /// A random amount of wei between `min` and `max` ether-milli (thousandths of an ether).
    pub fn random_milli_ether(&mut self, min: u64, max: u64) -> U256 {
        U256::from(self.rng.random_range(min..=max)) * U256::from(ETHER / 1000)
    }

    /// Fixes the block gas limit (otherwise: the sum of the transactions' gas limits, at least
    /// [`env::MIN_BLOCK_GAS_LIMIT`]).
    pub fn set_gas_limit(&mut self, gas_limit: u64) {
        self.gas_limit = Some(gas_limit);
    }

    /// The block gas limit [`Self::finish`] will use.
    pub fn gas_limit(&self) -> u64 {
        self.gas_limit.unwrap_or_else(|| {
            let sum = self.transactions.iter().map(|t| t.gas_limit).fold(0u64, u64::saturating_add);
            sum.max(env::MIN_BLOCK_GAS_LIMIT)
        })
    }

    /// The finished workload.
    pub fn finish(self, name: impl Into<String>) -> Workload {
        let context = env::block_context(self.spec, self.gas_limit());
        Workload {
            name: name.into(),
            block: Block { context, transactions: self.transactions },
            state: self.state,
        }
    }
}
