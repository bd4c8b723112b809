//! Hand-assembled contracts that receive payments and look at, keep, or pass on what they
//! get: the recipients of the payout blocks ([`crate::generators::payouts`]) whose outcome
//! depends on a balance (the paying account's, or their own), or which move ether on to an
//! account other payments reach too.
//!
//! All run on any call (they have no functions) and need Shanghai (`PUSH0`). The two that
//! read a balance return it (32 bytes), so that a transaction's output shows what it read.

use crate::{assets::Code, builder::BlockBuilder};
use alloy_primitives::{Address, U256};

/// Gas a payment to any of them needs at most (a call with value to an existing account).
pub const GAS: u64 = 60_000;

/// `ORIGIN BALANCE PUSH0 MSTORE PUSH1 32 PUSH0 RETURN`: returns the balance of the
/// transaction's sender.
const ORIGIN_BALANCE: [u8; 8] = [0x32, 0x31, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3];

/// `SELFBALANCE PUSH0 MSTORE PUSH1 32 PUSH0 RETURN`: returns its own balance.
const OWN_BALANCE: [u8; 7] = [0x47, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3];

/// `STOP`: keeps what it is paid.
const SINK: [u8; 1] = [0x00];

/// Installs a contract that returns the balance of whoever sends the transaction.
pub fn install_origin_balance(builder: &mut BlockBuilder) -> Address {
    builder.install(&Code::new(ORIGIN_BALANCE.to_vec()), 1, U256::ZERO)
}

/// Installs a contract that returns its own balance.
pub fn install_own_balance(builder: &mut BlockBuilder) -> Address {
    builder.install(&Code::new(OWN_BALANCE.to_vec()), 1, U256::ZERO)
}

/// Installs a contract that keeps every payment.
pub fn install_sink(builder: &mut BlockBuilder) -> Address {
    builder.install(&Code::new(SINK.to_vec()), 1, U256::ZERO)
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
