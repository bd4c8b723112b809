//! System calls: the EVM calls the protocol makes from the system address around a block's
//! transactions, run with revm on the block's [`Overlay`].
//!
//! - before the transactions: EIP-4788 (Cancun: the parent beacon block root into the beacon
//!   roots contract) and EIP-2935 (Prague: the parent hash into the history contract); a
//!   failure of these is ignored, as the execution specs' unchecked system transaction does;
//! - after the transactions (Prague): EIP-7002 withdrawal requests and EIP-7251 consolidation
//!   requests, whose contracts must have code and must not revert or halt.
//!
//! Why not `alloy-evm`'s `SystemCaller`: it runs revm's system call, whose gas limit in revm 43
//! adds EIP-8037's state-gas reservoir (an Amsterdam rule) to the 30,000,000 gas every earlier
//! fork gives a system call, so a system contract that runs out of gas before Amsterdam would
//! wrongly succeed (EEST `test_system_contract_errors[...system_contract_out_of_gas...]`).
//! Here the gas limit follows the fork.

use crate::{
    error::{BlockError, SystemCallFailure},
    overlay::{Overlay, OverlayDb, OverlayDbError},
};
use alloy_consensus::Header;
use alloy_eips::{
    eip2935::HISTORY_STORAGE_ADDRESS, eip4788::BEACON_ROOTS_ADDRESS,
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_primitives::{Address, Bytes, TxKind};
use lanes_executor::BlockContext;
use lanes_state::StateSource;
use revm::{
    context::{CfgEnv, TxEnv},
    context_interface::result::{EVMError, ExecutionResult, InvalidTransaction},
    database_interface::DatabaseCommit,
    handler::{
        system_call::SYSTEM_CALL_GAS_LIMIT, EthFrame, Handler, MainnetHandler, SYSTEM_ADDRESS,
    },
    interpreter::interpreter::EthInterpreter,
    primitives::{hardfork::SpecId, KECCAK_EMPTY},
    Context, ExecuteEvm, MainBuilder, MainContext,
};

/// The gas a system call gets before Amsterdam (`SYSTEM_TRANSACTION_GAS`).
pub const SYSTEM_CALL_GAS: u64 = 30_000_000;

/// Calls `contract` with `data` from the system address on `overlay` and commits what the call
/// changed. Returns the call's result.
fn call<S: StateSource + ?Sized>(
    context: &BlockContext,
    overlay: &mut Overlay<'_, S>,
    contract: Address,
    data: Bytes,
) -> Result<ExecutionResult, BlockError> {
    let db = OverlayDb { overlay, block_hashes: &context.block_hashes };
    let cfg = CfgEnv::new()
        .with_chain_id(context.chain_id)
        .with_spec_and_mainnet_gas_params(context.spec);
    let mut evm = Context::mainnet()
        .with_db(db)
        .with_block(context.header.clone())
        .with_cfg(cfg)
        .build_mainnet();
    let gas_limit = if context.spec.is_enabled_in(SpecId::AMSTERDAM) {
        SYSTEM_CALL_GAS_LIMIT
    } else {
        SYSTEM_CALL_GAS
    };
    evm.ctx.tx = TxEnv::builder()
        .caller(SYSTEM_ADDRESS)
        .kind(TxKind::Call(contract))
        .data(data)
        .gas_limit(gas_limit)
        .build()
        .map_err(|e| BlockError::SystemCall {
            contract,
            failure: SystemCallFailure::Evm(format!("{e:?}").into()),
        })?;
    let result = MainnetHandler::<
        _,
        EVMError<OverlayDbError, InvalidTransaction>,
        EthFrame<EthInterpreter>,
    >::default()
    .run_system_call(&mut evm);
    let state = evm.finalize();
    match result {
        Ok(result) => {
            evm.ctx.journaled_state.database.commit(state);
            Ok(result)
        }
        Err(EVMError::Database(OverlayDbError(source))) => Err(BlockError::State(source)),
        Err(error) => Err(BlockError::SystemCall {
            contract,
            failure: SystemCallFailure::Evm(error.to_string().into()),
        }),
    }
}

/// Runs the pre-block system calls of `header` (EIP-4788 from Cancun, EIP-2935 from Prague;
/// none at genesis) on `overlay`.
pub fn pre_block<S: StateSource + ?Sized>(
    header: &Header,
    context: &BlockContext,
    overlay: &mut Overlay<'_, S>,
) -> Result<(), BlockError> {
    if header.number == 0 {
        return Ok(());
    }
    if context.spec.is_enabled_in(SpecId::CANCUN) {
        let root = header.parent_beacon_block_root.unwrap_or_default();
        call(context, overlay, BEACON_ROOTS_ADDRESS, Bytes::copy_from_slice(root.as_slice()))?;
    }
    if context.spec.is_enabled_in(SpecId::PRAGUE) {
        let parent = header.parent_hash;
        call(context, overlay, HISTORY_STORAGE_ADDRESS, Bytes::copy_from_slice(parent.as_slice()))?;
    }
    Ok(())
}

/// Runs the post-block request system calls (EIP-7002, then EIP-7251) on `overlay` and returns
/// their outputs, the requests of each type. A missing contract, a revert or a halt makes the
/// block invalid.
pub fn post_block<S: StateSource + ?Sized>(
    context: &BlockContext,
    overlay: &mut Overlay<'_, S>,
) -> Result<[Bytes; 2], BlockError> {
    let mut outputs = [Bytes::new(), Bytes::new()];
    for (output, contract) in outputs
        .iter_mut()
        .zip([WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS])
    {
        let account = overlay.account_now(contract).map_err(BlockError::State)?;
        if account.is_none_or(|a| a.code_hash == KECCAK_EMPTY) {
            return Err(BlockError::SystemContractMissing(contract));
        }
        let failure = match call(context, overlay, contract, Bytes::new())? {
            ExecutionResult::Success { output: out, .. } => {
                *output = out.into_data();
                continue;
            }
            ExecutionResult::Revert { .. } => SystemCallFailure::Reverted,
            ExecutionResult::Halt { reason, .. } => SystemCallFailure::Halted(reason),
        };
        return Err(BlockError::SystemCall { contract, failure });
    }
    Ok(outputs)
}
