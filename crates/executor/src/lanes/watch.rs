//! Instructions that note whose balance a lane's transactions depend on: in the later lanes
//! of a split round (`split.rs`), which assume the sender's balance and add up other lanes'
//! payments to accounts they only paid, every instruction that reads a balance or needs one
//! to cover a value records the account in the lane's log (`LaneLog::balance_reads`), and
//! `BALANCE` of the sender sets `LaneLog::balance_read`.
//!
//! Those are `BALANCE` (any account), `SELFBALANCE`, `CALL` and `CALLCODE` with value, `CREATE`
//! and `CREATE2` with value (the running contract's balance must cover it) and `SELFDESTRUCT`
//! (it moves the running contract's balance). Each runs revm's own instruction after noting.

use super::log::{LaneDb, LaneLog};
use crate::evm::BlockCtx;
use alloy_primitives::Address;
use lanes_state::StateSource;
use revm::{
    bytecode::opcode,
    handler::instructions::EthInstructions,
    interpreter::{
        instructions::{contract, host},
        interpreter::EthInterpreter,
        interpreter_types::InputsTr,
        Instruction, InstructionContext, InstructionExecResult,
    },
};

/// The context the lanes' instructions run in.
type LaneContext<'c, 'a, S> = InstructionContext<'c, BlockCtx<'a, LaneDb<'a, S>>, EthInterpreter>;

/// Replaces the instructions that read or spend a balance in `instructions` with ones that
/// note the account first.
pub(crate) fn watch_balances<'a, S: StateSource + ?Sized>(
    instructions: &mut EthInstructions<EthInterpreter, BlockCtx<'a, LaneDb<'a, S>>>,
) {
    let table = instructions.instruction_table_mut();
    table[usize::from(opcode::BALANCE)] = Instruction::new(balance::<S>);
    table[usize::from(opcode::SELFBALANCE)] = Instruction::new(selfbalance::<S>);
    table[usize::from(opcode::CALL)] = Instruction::new(call::<S>);
    table[usize::from(opcode::CALLCODE)] = Instruction::new(callcode::<S>);
    table[usize::from(opcode::CREATE)] = Instruction::new(create::<false, S>);
    table[usize::from(opcode::CREATE2)] = Instruction::new(create::<true, S>);
    table[usize::from(opcode::SELFDESTRUCT)] = Instruction::new(selfdestruct::<S>);
}

/// Notes that the running transaction depends on the balance of `address`.
fn note(track: &mut LaneLog, address: Address) {
    track.balance_read |= track.watch == Some(address);
    let read = (address, track.tx);
    if track.balance_reads.last() != Some(&read) {
        track.balance_reads.push(read);
    }
}

/// Notes the running contract when the stack item `value_at` (a value to send) is not zero.
fn note_sending<S: StateSource + ?Sized>(context: &mut LaneContext<'_, '_, S>, value_at: usize) {
    if context.interpreter.stack.peek(value_at).is_ok_and(|value| !value.is_zero()) {
        let running = context.interpreter.input.target_address();
        note(&mut context.host.journaled_state.database.track, running);
    }
}

fn balance<S: StateSource + ?Sized>(context: LaneContext<'_, '_, S>) -> InstructionExecResult {
    if let Ok(top) = context.interpreter.stack.peek(0) {
        note(&mut context.host.journaled_state.database.track, Address::from_word(top.into()));
    }
    host::balance(context)
}

fn selfbalance<S: StateSource + ?Sized>(context: LaneContext<'_, '_, S>) -> InstructionExecResult {
    let running = context.interpreter.input.target_address();
    note(&mut context.host.journaled_state.database.track, running);
    host::selfbalance(context)
}

fn call<S: StateSource + ?Sized>(mut context: LaneContext<'_, '_, S>) -> InstructionExecResult {
    // gas, address, value, ...
    note_sending(&mut context, 2);
    contract::call::<{ opcode::CALL }, _, _>(context)
}

fn callcode<S: StateSource + ?Sized>(mut context: LaneContext<'_, '_, S>) -> InstructionExecResult {
    note_sending(&mut context, 2);
    contract::call::<{ opcode::CALLCODE }, _, _>(context)
}

fn create<const IS_CREATE2: bool, S: StateSource + ?Sized>(
    mut context: LaneContext<'_, '_, S>,
) -> InstructionExecResult {
    // value, offset, size (, salt)
    note_sending(&mut context, 0);
    contract::create::<IS_CREATE2, _, _>(context)
}

fn selfdestruct<S: StateSource + ?Sized>(context: LaneContext<'_, '_, S>) -> InstructionExecResult {
    let running = context.interpreter.input.target_address();
    note(&mut context.host.journaled_state.database.track, running);
    host::selfdestruct(context)
}
