//! The block environment every workload uses: a realistic post-merge mainnet header.
//!
//! Chain 1, base fee 7 gwei, a beneficiary distinct from every generated account, prevrandao
//! set, no excess blob gas. Transactions pay a priority fee on top of the base fee (see
//! [`crate::builder`]).

use alloy_primitives::{address, b256, Address, B256, U256};
use lanes_executor::{
    revm::{
        context::BlockEnv,
        primitives::{
            eip4844::{BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE},
            hardfork::SpecId,
        },
    },
    BlobParams, BlockContext,
};

/// Chain id of every workload (mainnet).
pub const CHAIN_ID: u64 = 1;
/// Base fee per gas: 7 gwei.
pub const BASE_FEE: u64 = 7_000_000_000;
/// One gwei in wei.
pub const GWEI: u128 = 1_000_000_000;
/// One ether in wei.
pub const ETHER: u128 = 1_000_000_000_000_000_000;
/// Block number.
pub const BLOCK_NUMBER: u64 = 21_000_000;
/// Block timestamp (seconds).
pub const TIMESTAMP: u64 = 1_730_000_000;
/// The block's beneficiary (coinbase). No generated account has this address.
pub const BENEFICIARY: Address = address!("0xc01ba5e0000000000000000000000000000b1a4e");
/// The beneficiary's balance before the block.
pub const BENEFICIARY_BALANCE: u128 = 5 * ETHER;
/// prevrandao of the block.
pub const PREVRANDAO: B256 =
    b256!("0x6c616e65732d776f726b6c6f6164732d7072657672616e64616f2d3230323400");
/// The smallest block gas limit a workload gets (mainnet's, 30 million).
pub const MIN_BLOCK_GAS_LIMIT: u64 = 30_000_000;

/// The block context of a workload: `spec` rules, `gas_limit` block gas, everything else as
/// described in the [module documentation](self).
pub fn block_context(spec: SpecId, gas_limit: u64) -> BlockContext {
    let mut header = BlockEnv {
        number: U256::from(BLOCK_NUMBER),
        beneficiary: BENEFICIARY,
        timestamp: U256::from(TIMESTAMP),
        gas_limit,
        basefee: BASE_FEE,
        difficulty: U256::ZERO,
        prevrandao: Some(PREVRANDAO),
        blob_excess_gas_and_price: None,
        ..Default::default()
    };
    let mut blob = BlobParams::default();
    if spec.is_enabled_in(SpecId::CANCUN) {
        let (fraction, max_blobs) = if spec.is_enabled_in(SpecId::PRAGUE) {
            (BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE, 9)
        } else {
            (BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, 6)
        };
        header.set_blob_excess_gas_and_price(0, fraction);
        blob.max_blob_gas_per_block = Some(max_blobs * (1 << 17));
    }
    let mut context = BlockContext::new(spec, header);
    context.chain_id = CHAIN_ID;
    context.blob = blob;
    context
}
