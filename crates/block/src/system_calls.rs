//! System calls: the EVM calls the protocol makes from the system address around a block's
//! transactions, run with `alloy-evm`'s [`SystemCaller`] on the block's [`Overlay`].
//!
//! - before the transactions: EIP-2935 (Prague: the parent hash into the history contract) and
//!   EIP-4788 (Cancun: the parent beacon block root into the beacon roots contract);
//! - after the transactions (Prague): EIP-7002 withdrawal requests and EIP-7251 consolidation
//!   requests, whose contracts must have code; a failing call makes the block invalid.

use crate::{
    chainspec::ChainSpec,
    error::BlockError,
    overlay::{Overlay, OverlayDb},
};
use alloy_consensus::Header;
use alloy_eips::{
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, eip7685::Requests,
};
use alloy_evm::{block::SystemCaller, eth::EthEvmBuilder, EvmEnv};
use lanes_executor::BlockContext;
use lanes_state::StateSource;
use revm::{context::CfgEnv, primitives::KECCAK_EMPTY};

fn env(context: &BlockContext) -> EvmEnv {
    EvmEnv {
        cfg_env: CfgEnv::new()
            .with_chain_id(context.chain_id)
            .with_spec_and_mainnet_gas_params(context.spec),
        block_env: context.header.clone(),
    }
}

/// Runs the pre-block system calls of `header` (EIP-2935, EIP-4788) on `overlay`.
pub fn pre_block<S: StateSource + ?Sized>(
    chain: &ChainSpec,
    header: &Header,
    context: &BlockContext,
    overlay: &mut Overlay<'_, S>,
) -> Result<(), BlockError> {
    let db = OverlayDb { overlay, block_hashes: &context.block_hashes };
    let mut evm = EthEvmBuilder::new(db, env(context)).build();
    SystemCaller::new(chain)
        .apply_pre_execution_changes(header, &mut evm)
        .map_err(|e| BlockError::SystemCall(Box::new(e)))
}

/// Runs the post-block request system calls (EIP-7002, EIP-7251) on `overlay` and appends
/// their requests to `requests`.
pub fn post_block<S: StateSource + ?Sized>(
    chain: &ChainSpec,
    context: &BlockContext,
    overlay: &mut Overlay<'_, S>,
    requests: &mut Requests,
) -> Result<(), BlockError> {
    for address in [WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS] {
        let account = overlay.account_now(address).map_err(BlockError::State)?;
        if account.is_none_or(|a| a.code_hash == KECCAK_EMPTY) {
            return Err(BlockError::SystemContractMissing(address));
        }
    }
    let db = OverlayDb { overlay, block_hashes: &context.block_hashes };
    let mut evm = EthEvmBuilder::new(db, env(context)).build();
    SystemCaller::new(chain)
        .append_post_execution_changes(&mut evm, requests)
        .map_err(|e| BlockError::SystemCall(Box::new(e)))
}
