//! Changes outside transactions: block and ommer rewards before the merge, EIP-4895
//! withdrawals after Shanghai, the DAO fork's irregular state change (EIP-779, applied before
//! the transactions of the fork block), and the EIP-6110 deposit requests read from the
//! deposit contract's logs.

use crate::{error::BlockError, overlay::Overlay};
use alloy_consensus::Header;
use alloy_eips::eip4895::Withdrawal;
use alloy_evm::{
    block::calc::{block_reward, ommer_reward},
    eth::dao_fork::{DAO_HARDFORK_ACCOUNTS, DAO_HARDFORK_BENEFICIARY},
};
use alloy_primitives::{b256, Address, Log, B256, U256};
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

/// The topic of the deposit contract's `DepositEvent`.
pub const DEPOSIT_EVENT_TOPIC: B256 =
    b256!("0x649bbc62d0e31342afea4e5cd82d4049e7e1ee912fc0889aa790803be39038c5");

/// The deposit requests (EIP-6110) of a block: for each `DepositEvent` log of `contract`, in
/// order, pubkey, withdrawal credentials, amount, signature and index concatenated.
///
/// The log data must have exactly the ABI layout the deposit contract emits (the execution
/// specs' `extract_deposit_data`): 576 bytes, offsets 160, 256, 320, 384, 512, and sizes 48,
/// 32, 8, 96, 8. Anything else makes the block invalid. (`alloy-evm`'s parser decodes such
/// logs leniently, so it is not used here.)
pub fn deposit_requests<'a>(
    contract: Address,
    logs: impl IntoIterator<Item = &'a Log>,
) -> Result<Vec<u8>, BlockError> {
    const FIELDS: [(usize, usize, &str); 5] = [
        (160, 48, "pubkey"),
        (256, 32, "withdrawal credentials"),
        (320, 8, "amount"),
        (384, 96, "signature"),
        (512, 8, "index"),
    ];
    let mut out = Vec::new();
    let deposits = logs.into_iter().filter(|log| {
        log.address == contract && log.topics().first() == Some(&DEPOSIT_EVENT_TOPIC)
    });
    for (index, log) in deposits.enumerate() {
        let fail = |reason| BlockError::DepositLayout { log: index, reason };
        let data = log.data.data.as_ref();
        if data.len() != 576 {
            return Err(fail("data is not 576 bytes"));
        }
        let word = |at: usize| U256::from_be_slice(&data[at..at + 32]);
        for (slot, (offset, size, _)) in FIELDS.iter().enumerate() {
            if word(slot * 32) != U256::from(*offset) {
                return Err(fail("a field offset is not the contract's"));
            }
            if word(*offset) != U256::from(*size) {
                return Err(fail("a field size is not the contract's"));
            }
        }
        for (offset, size, _) in FIELDS {
            out.extend_from_slice(&data[offset + 32..offset + 32 + size]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, Bytes, LogData};

    const CONTRACT: Address = address!("0x00000000219ab540356cbb839cbe05303d7705fa");

    /// A deposit log laid out as the deposit contract emits it, fields filled with `fill`.
    fn deposit_data(fill: u8) -> Vec<u8> {
        let mut data = vec![0u8; 576];
        for (slot, (offset, size)) in
            [(160usize, 48usize), (256, 32), (320, 8), (384, 96), (512, 8)].into_iter().enumerate()
        {
            data[slot * 32 + 24..slot * 32 + 32].copy_from_slice(&(offset as u64).to_be_bytes());
            data[offset + 24..offset + 32].copy_from_slice(&(size as u64).to_be_bytes());
            data[offset + 32..offset + 32 + size].fill(fill);
        }
        data
    }

    fn log(data: Vec<u8>) -> Log {
        Log {
            address: CONTRACT,
            data: LogData::new_unchecked(vec![DEPOSIT_EVENT_TOPIC], Bytes::from(data)),
        }
    }

    #[test]
    fn a_well_formed_deposit_becomes_its_192_bytes() {
        let out = deposit_requests(CONTRACT, &[log(deposit_data(7))]).unwrap();
        assert_eq!(out, vec![7u8; 48 + 32 + 8 + 96 + 8]);
        // Logs of other contracts or events are not deposits.
        let mut other = log(deposit_data(7));
        other.address = Address::ZERO;
        assert!(deposit_requests(CONTRACT, &[other]).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_layout_is_rejected() {
        let mut bad_offset = deposit_data(1);
        bad_offset[31] = 0xa1;
        let mut bad_size = deposit_data(1);
        bad_size[160 + 31] = 47;
        for data in [bad_offset, bad_size, vec![0u8; 575]] {
            let error = deposit_requests(CONTRACT, &[log(data)]).unwrap_err();
            assert!(matches!(error, BlockError::DepositLayout { log: 0, .. }), "{error}");
        }
    }
}
