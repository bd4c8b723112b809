//! The executor's input: a block's environment and its transactions.

use alloy_consensus::Header;
use alloy_primitives::{keccak256, B256, U256};
use revm::{
    context::{BlockEnv, TxEnv},
    primitives::hardfork::SpecId,
};
use std::collections::BTreeMap;

/// Blob parameters of the block's fork (EIP-4844, EIP-7691, EIP-7840, the BPO forks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobParams {
    /// Most blobs one transaction may carry (`None`: revm's default for the spec).
    pub max_blobs_per_tx: Option<u64>,
    /// Most blob gas the whole block may use (`None`: no block-level limit is checked).
    pub max_blob_gas_per_block: Option<u64>,
}

/// What `BLOCKHASH` returns for a height that [`BlockHashes::known`] does not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingBlockHash {
    /// The executor fails with an error naming the height: the input was incomplete.
    #[default]
    Error,
    /// `keccak256` of the height written in decimal: the convention of Ethereum's state tests.
    Keccak256OfNumber,
}

/// The block hashes `BLOCKHASH` can see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHashes {
    /// Known hashes by height.
    pub known: BTreeMap<u64, B256>,
    /// What to answer for any other height.
    pub missing: MissingBlockHash,
}

impl BlockHashes {
    /// The hash of block `number`, or `None` when it is unknown and must not be made up.
    pub fn get(&self, number: u64) -> Option<B256> {
        match (self.known.get(&number), self.missing) {
            (Some(hash), _) => Some(*hash),
            (None, MissingBlockHash::Keccak256OfNumber) => {
                Some(keccak256(number.to_string().as_bytes()))
            }
            (None, MissingBlockHash::Error) => None,
        }
    }
}

/// revm's environment for a block with `header`: number, beneficiary, timestamp, gas limit,
/// base fee and difficulty from the header; `prevrandao` from its mix hash once `merged`; and
/// when the fork has blobs (`blob_update_fraction`: its EIP-4844/EIP-7691 base-fee update
/// fraction) the blob gas price from the header's excess blob gas.
pub fn block_env(header: &Header, merged: bool, blob_update_fraction: Option<u64>) -> BlockEnv {
    let mut env = BlockEnv {
        number: U256::from(header.number),
        beneficiary: header.beneficiary,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit,
        basefee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: header.difficulty,
        prevrandao: merged.then_some(header.mix_hash),
        ..Default::default()
    };
    if let (Some(excess), Some(fraction)) = (header.excess_blob_gas, blob_update_fraction) {
        env.set_blob_excess_gas_and_price(excess, fraction);
    }
    env
}

/// Everything transactions can observe about their block, besides the state.
#[derive(Clone, Debug)]
pub struct BlockContext {
    /// Chain id (EIP-155, the `CHAINID` opcode).
    pub chain_id: u64,
    /// The fork rules, Frontier through Osaka (and Amsterdam where revm has it).
    pub spec: SpecId,
    /// Number, beneficiary, timestamp, gas limit, base fee, difficulty or prevrandao, excess blob
    /// gas and blob gas price.
    pub header: BlockEnv,
    /// Blob limits of the fork.
    pub blob: BlobParams,
    /// The hashes `BLOCKHASH` can see.
    pub block_hashes: BlockHashes,
}

impl BlockContext {
    /// A context for `spec` on chain 1 with a default header and no block hashes.
    pub fn new(spec: SpecId, header: BlockEnv) -> Self {
        Self {
            chain_id: 1,
            spec,
            header,
            blob: BlobParams::default(),
            block_hashes: BlockHashes::default(),
        }
    }
}

/// A block to execute: its context and its transactions in order.
///
/// Each [`TxEnv::caller`] is the transaction's recovered sender.
#[derive(Clone, Debug)]
pub struct Block {
    /// The environment.
    pub context: BlockContext,
    /// Transactions in block order.
    pub transactions: Vec<TxEnv>,
}

impl Block {
    /// Sum of the transactions' gas limits (an upper bound of the gas the block can use).
    pub fn gas_limit_sum(&self) -> u64 {
        self.transactions.iter().map(|t| t.gas_limit).fold(0u64, u64::saturating_add)
    }

    /// About how many accounts and slots the transactions write, from a glance at them: every
    /// sender, every recipient of value, two slots per contract call. Both engines size their
    /// write tables with it, so that neither grows (rehashes) its tables while executing, yet
    /// neither holds memory for writes that never come (slots in a block of plain transfers).
    pub fn expected_writes(&self) -> (usize, usize) {
        let mut accounts = 0;
        let mut slots = 0;
        for tx in &self.transactions {
            accounts += 1 + usize::from(!tx.value.is_zero());
            slots += 2 * usize::from(!tx.data.is_empty());
        }
        (accounts, slots)
    }
}
