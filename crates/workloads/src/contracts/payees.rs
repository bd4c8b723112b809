//! Two hand-assembled contracts that receive payments and look at, or pass on, what they get:
//! the recipients of the payout blocks ([`crate::generators::payouts`]) whose code depends on
//! the paying account's balance, or moves ether on to an account other payments reach too.
//!
//! Both run on any call (they have no functions) and need Shanghai (`PUSH0`).

use crate::{assets::Code, builder::BlockBuilder};
use alloy_primitives::{Address, U256};

/// Gas a payment to either contract needs at most (a fresh storage slot, or a call with
/// value to an existing account).
pub const GAS: u64 = 60_000;

/// `ORIGIN BALANCE PUSH0 SSTORE STOP`: stores the balance of the transaction's sender in slot
/// 0, so that the state after the block shows which balance the code read.
const ORIGIN_BALANCE: [u8; 5] = [0x32, 0x31, 0x5f, 0x55, 0x00];

/// Installs a contract that records the balance of whoever sends the transaction.
pub fn install_origin_balance(builder: &mut BlockBuilder) -> Address {
    builder.install(&Code::new(ORIGIN_BALANCE.to_vec()), 1, U256::ZERO)
}

/// Installs a contract that forwards every payment it receives to `target` (`CALL` with all
/// the gas left and the call's value; the result is dropped).
pub fn install_forwarder(builder: &mut BlockBuilder, target: Address) -> Address {
    // PUSH0 PUSH0 PUSH0 PUSH0 CALLVALUE PUSH20 <target> GAS CALL POP STOP
    let mut code = vec![0x5f, 0x5f, 0x5f, 0x5f, 0x34, 0x73];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[0x5a, 0xf1, 0x50, 0x00]);
    builder.install(&Code::new(code), 1, U256::ZERO)
}
