//! Balance changes outside transactions: block and ommer rewards before the merge, EIP-4895
//! withdrawals after Shanghai, and the DAO fork's irregular state change (EIP-779, applied
//! before the transactions of the fork block).

use crate::{error::BlockError, overlay::Overlay};
use alloy_consensus::Header;
use alloy_eips::eip4895::Withdrawal;
use alloy_evm::{
    block::calc::{block_reward, ommer_reward},
    eth::dao_fork::{DAO_HARDFORK_ACCOUNTS, DAO_HARDFORK_BENEFICIARY},
};
use alloy_primitives::U256;
use lanes_state::StateSource;

/// The base block reward of a pre-merge block: 5 ether (Frontier), 3 (Byzantium, EIP-649),
/// 2 (Constantinople, EIP-1234).
pub fn base_reward(spec: revm::primitives::hardfork::SpecId) -> u128 {
    use revm::primitives::hardfork::SpecId;
    let ether = alloy_consensus::constants::ETH_TO_WEI;
    if spec.is_enabled_in(SpecId::PETERSBURG) {
        2 * ether
    } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
        3 * ether
    } else {
        5 * ether
    }
}

/// Pays the pre-merge block reward to `header.beneficiary` and each ommer's reward to its
/// beneficiary.
pub fn pay_rewards<S: StateSource + ?Sized>(
    overlay: &mut Overlay<'_, S>,
    header: &Header,
    ommers: &[Header],
    base: u128,
    state_clear: bool,
) -> Result<(), BlockError> {
    let reward = block_reward(base, ommers.len());
    overlay
        .add_balance(header.beneficiary, U256::from(reward), state_clear)
        .map_err(BlockError::State)?;
    for ommer in ommers {
        let reward = ommer_reward(base, header.number, ommer.number);
        overlay
            .add_balance(ommer.beneficiary, U256::from(reward), state_clear)
            .map_err(BlockError::State)?;
    }
    Ok(())
}

/// Credits each withdrawal's amount (in gwei) to its address (EIP-4895). A zero withdrawal
/// to an empty account deletes it (EIP-161), as the execution specs do.
pub fn apply_withdrawals<S: StateSource + ?Sized>(
    overlay: &mut Overlay<'_, S>,
    withdrawals: &[Withdrawal],
) -> Result<(), BlockError> {
    for withdrawal in withdrawals {
        overlay
            .add_balance(withdrawal.address, withdrawal.amount_wei(), true)
            .map_err(BlockError::State)?;
    }
    Ok(())
}

/// Moves the balance of every DAO account to the refund contract (EIP-779). The DAO fork
/// predates EIP-161: accounts it touches exist afterwards, even when empty.
pub fn apply_dao_fork<S: StateSource + ?Sized>(
    overlay: &mut Overlay<'_, S>,
) -> Result<(), BlockError> {
    let mut total = U256::ZERO;
    for address in DAO_HARDFORK_ACCOUNTS {
        // Like geth and the execution specs, a missing DAO account is created empty.
        let mut info =
            overlay.account_now(address).map_err(BlockError::State)?.unwrap_or_else(|| {
                revm::state::AccountInfo {
                    code_hash: revm::primitives::KECCAK_EMPTY,
                    ..Default::default()
                }
            });
        total += info.balance;
        info.balance = U256::ZERO;
        overlay.set_account(address, Some(info));
    }
    overlay.add_balance(DAO_HARDFORK_BENEFICIARY, total, false).map_err(BlockError::State)
}
