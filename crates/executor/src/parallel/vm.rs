//! One transaction incarnation on revm: the EVM a worker keeps for the whole block, the two
//! changes Lanes makes to revm's behaviour, and how the journal becomes a [`WriteSet`].
//!
//! The two changes, both invisible in the results:
//! - **Deferred beneficiary fee.** When a transaction never loaded the beneficiary, the fee is
//!   not added inside the transaction (that would make every transaction read and write the
//!   beneficiary) but written as a [`AccountWrite::Credit`], folded in order on read.
//! - **Balance observation hooks.** `BALANCE`, `SELFBALANCE`, value-bearing `CALL`, `CALLCODE`,
//!   `CREATE`, `CREATE2` and `SELFDESTRUCT` record whose balance the execution looked at.
//!   An account whose balance was not looked at and only grew is written as a credit, so
//!   payments to one recipient do not conflict.

use super::{
    mv_memory::{AccountWrite, TxIdx, WriteSet},
    tx_db::{AccountView, TxDb},
};
use crate::{
    error::ExecutionError,
    evm::{changed_slots, classify_error, AccountEffect, BlockCtx, DeferringHandler, Eip7610},
    outcome::InvalidTx,
    panic_message,
};
use alloy_primitives::Address;
use lanes_state::StateSource;
use revm::{
    bytecode::opcode,
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::{
        result::{ExecutionResult, HaltReason},
        LocalContextTr,
    },
    handler::{Handler, MainnetEvm},
    interpreter::{
        instructions::{contract, host},
        interpreter::EthInterpreter,
        Instruction, InstructionContext, InstructionExecResult,
    },
    primitives::hardfork::SpecId,
    state::EvmState,
    Context, ExecuteEvm, Journal, MainBuilder,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The revm context of a parallel worker.
pub(crate) type ParCtx<'a, S> = BlockCtx<'a, TxDb<'a, S>>;

/// The revm EVM of a parallel worker, with EIP-7610.
pub(crate) type ParEvm<'a, S> = Eip7610<MainnetEvm<ParCtx<'a, S>>>;

/// Why a transaction incarnation produced no outcome.
#[derive(Debug)]
pub(crate) enum TxFailure {
    /// The transaction is invalid (if its reads hold).
    Invalid(InvalidTx),
    /// The block cannot execute (if its reads hold).
    Fatal(ExecutionError),
}

/// What one incarnation produced.
pub(crate) type Execution = Result<ExecutionResult<HaltReason>, TxFailure>;

fn observe<S: StateSource + ?Sized>(host: &mut ParCtx<'_, S>, address: Address) {
    host.journaled_state.database.observe_balance(address);
}

fn stack_address(
    ctx: &InstructionContext<'_, impl ?Sized, EthInterpreter>,
    n: usize,
) -> Option<Address> {
    ctx.interpreter.stack.peek(n).ok().map(|word| Address::from_word(word.into()))
}

fn stack_is_nonzero(ctx: &InstructionContext<'_, impl ?Sized, EthInterpreter>, n: usize) -> bool {
    ctx.interpreter.stack.peek(n).is_ok_and(|word| !word.is_zero())
}

fn hook_balance<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    if let Some(address) = stack_address(&ctx, 0) {
        observe(ctx.host, address);
    }
    host::balance(ctx)
}

fn hook_selfbalance<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    observe(ctx.host, ctx.interpreter.input.target_address);
    host::selfbalance(ctx)
}

fn hook_selfdestruct<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    observe(ctx.host, ctx.interpreter.input.target_address);
    host::selfdestruct(ctx)
}

fn hook_call<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    if stack_is_nonzero(&ctx, 2) {
        observe(ctx.host, ctx.interpreter.input.target_address);
    }
    contract::call::<{ opcode::CALL }, _, _>(ctx)
}

fn hook_callcode<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    if stack_is_nonzero(&ctx, 2) {
        observe(ctx.host, ctx.interpreter.input.target_address);
    }
    contract::call::<{ opcode::CALLCODE }, _, _>(ctx)
}

fn hook_create<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    if stack_is_nonzero(&ctx, 0) {
        observe(ctx.host, ctx.interpreter.input.target_address);
    }
    contract::create::<false, _, _>(ctx)
}

fn hook_create2<S: StateSource + ?Sized>(
    ctx: InstructionContext<'_, ParCtx<'_, S>, EthInterpreter>,
) -> InstructionExecResult {
    if stack_is_nonzero(&ctx, 0) {
        observe(ctx.host, ctx.interpreter.input.target_address);
    }
    contract::create::<true, _, _>(ctx)
}

/// Builds a worker's EVM: mainnet revm with the balance observation hooks installed.
pub(crate) fn build_evm<'a, S: StateSource + ?Sized>(
    db: TxDb<'a, S>,
    spec: SpecId,
    cfg: CfgEnv,
    header: &'a BlockEnv,
    first_tx: &'a TxEnv,
) -> ParEvm<'a, S> {
    let mut evm = Context::<BlockEnv, TxEnv, CfgEnv, _, Journal<_>, ()>::new(db, spec)
        .with_cfg(cfg)
        .with_block(header)
        .with_tx(first_tx)
        .build_mainnet();
    let table = evm.instruction.instruction_table_mut();
    table[opcode::BALANCE as usize] = Instruction::new(hook_balance::<S>);
    table[opcode::SELFBALANCE as usize] = Instruction::new(hook_selfbalance::<S>);
    table[opcode::SELFDESTRUCT as usize] = Instruction::new(hook_selfdestruct::<S>);
    table[opcode::CALL as usize] = Instruction::new(hook_call::<S>);
    table[opcode::CALLCODE as usize] = Instruction::new(hook_callcode::<S>);
    table[opcode::CREATE as usize] = Instruction::new(hook_create::<S>);
    table[opcode::CREATE2 as usize] = Instruction::new(hook_create2::<S>);
    Eip7610(evm)
}

/// The largest journal state map (in accounts) kept from one transaction for the next.
const KEPT_STATE_CAPACITY: usize = 64;

/// Runs transaction `index` on `evm` and fills `writes` with what it wrote.
///
/// On return the worker's database holds the incarnation's reads, sealed.
pub(crate) fn execute_tx<'a, S: StateSource + ?Sized>(
    evm: &mut ParEvm<'a, S>,
    index: TxIdx,
    tx: &'a TxEnv,
    writes: &mut WriteSet,
) -> Execution {
    writes.clear();
    {
        let db = &mut evm.0.ctx.journaled_state.database;
        db.begin(index);
        // The sender pays for gas and value: its balance always matters.
        db.observe_balance(tx.caller);
    }
    evm.0.ctx.tx = tx;
    let run = catch_unwind(AssertUnwindSafe(|| DeferringHandler::new().run(evm)));
    let state = evm.0.finalize();
    let outcome = match run {
        Err(payload) => {
            // revm may have been interrupted anywhere: reset what `catch_error` would.
            evm.0.ctx.local.clear();
            evm.0.frame_stack.clear();
            Err(TxFailure::Fatal(ExecutionError::Panic {
                tx: index,
                message: panic_message(&payload),
            }))
        }
        Ok(Err(error)) => Err(match classify_error(index, error) {
            Ok(invalid) => TxFailure::Invalid(invalid),
            Err(fatal) => TxFailure::Fatal(fatal),
        }),
        Ok(Ok(result)) => {
            let db = &mut evm.0.ctx.journaled_state.database;
            match extract_writes(&state, db, writes) {
                Ok(()) => Ok(result),
                Err(fatal) => Err(TxFailure::Fatal(fatal)),
            }
        }
    };
    evm.0.ctx.journaled_state.database.seal_reads();
    // The journal's next transaction fills the same map instead of growing a new one (a
    // transaction loads a handful of accounts: two or three reallocations each time).
    // A map grown by a rare transaction of many accounts is not kept: clearing it and walking
    // it (`extract_writes`) cost in proportion to its capacity.
    if state.capacity() <= KEPT_STATE_CAPACITY {
        let mut state = state;
        state.clear();
        evm.0.ctx.journaled_state.inner.state = state;
    }
    outcome
}

/// Turns a finished transaction's journal into its write set.
///
/// An account written as a whole carries the balance the transaction read, so that balance
/// counts as observed: validation then compares it exactly.
fn extract_writes<S: StateSource + ?Sized>(
    state: &EvmState,
    db: &mut TxDb<'_, S>,
    writes: &mut WriteSet,
) -> Result<(), ExecutionError> {
    for (address, account) in state {
        let Some(effect) = AccountEffect::of(account) else { continue };
        match effect {
            AccountEffect::Destroyed => {
                db.observe_balance(*address);
                writes.accounts.push((*address, AccountWrite::Absolute(None)));
                writes.wipes.push(*address);
            }
            AccountEffect::Created(info) => {
                db.observe_balance(*address);
                writes
                    .accounts
                    .push((*address, AccountWrite::Absolute(Some(Box::new(info.clone())))));
                writes.wipes.push(*address);
                writes.storage.extend(changed_slots(account).map(|(k, v)| (*address, k, v)));
            }
            AccountEffect::Changed(info) => {
                writes.storage.extend(changed_slots(account).map(|(k, v)| (*address, k, v)));
                let Some(seen) = db.seen(address).copied() else {
                    return Err(ExecutionError::Invariant(
                        "a changed account was never read from the database",
                    ));
                };
                let now = AccountView {
                    balance: info.balance,
                    nonce: info.nonce,
                    code_hash: info.code_hash,
                };
                match seen {
                    Some(view) if view == now => {}
                    Some(view)
                        if !db.observed.contains(address)
                            && !view.is_empty()
                            && view.nonce == now.nonce
                            && view.code_hash == now.code_hash
                            && now.balance > view.balance =>
                    {
                        writes
                            .accounts
                            .push((*address, AccountWrite::Credit(now.balance - view.balance)));
                    }
                    _ => {
                        db.observe_balance(*address);
                        writes
                            .accounts
                            .push((*address, AccountWrite::Absolute(Some(Box::new(info.clone())))));
                    }
                }
            }
        }
    }
    for (address, _) in &writes.accounts {
        if let Some(value) = db.pre_block_value(address) {
            writes.pre_block.push((*address, value));
        }
    }
    Ok(())
}
