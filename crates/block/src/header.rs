//! Header rules: what a header must satisfy given its parent's header and the fork.
//!
//! Checked here, in this order: number, timestamp, extra-data size (and the DAO fork's extra
//! data), gas limit bounds, gas used within the limit, the fields each fork adds or forbids,
//! the EIP-1559 base fee, the proof-of-work difficulty (before the merge) or the zero
//! difficulty, nonce and empty ommers (after), and EIP-4844's excess blob gas. The seal itself
//! (ethash) is not verified: every fixture Lanes runs uses the `NoProof` seal engine.

use crate::{
    chainspec::{at_least, bomb_delay, ChainSpec},
    error::BlockError,
};
use alloy_consensus::{constants::EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::{
    eip1559::{calc_next_block_base_fee, BaseFeeParams, INITIAL_BASE_FEE},
    eip7840::BlobParams,
};
use alloy_hardforks::EthereumHardfork;
use alloy_primitives::{B64, U256};

/// Lowest gas limit a block may have.
pub const MIN_GAS_LIMIT: u64 = 5_000;
/// Highest gas limit a block may have: 2^63 - 1 (EIP-1985 caps gas values at a signed
/// 64-bit integer).
pub const MAX_GAS_LIMIT: u64 = i64::MAX as u64;
/// Longest extra data a header may carry.
pub const MAX_EXTRA_DATA: usize = 32;
/// Lowest proof-of-work difficulty.
pub const MIN_DIFFICULTY: u64 = 131_072;
/// The extra data of the ten blocks from the DAO fork (EIP-779).
pub const DAO_EXTRA_DATA: &[u8] = b"dao-hard-fork";

/// Where a header sits: its fork and whether it is past the merge.
#[derive(Clone, Copy, Debug)]
pub struct HeaderFork {
    /// The latest fork active at the header.
    pub fork: EthereumHardfork,
    /// Whether the merge rules apply.
    pub merged: bool,
    /// The blob parameters of the header's fork (Cancun on).
    pub blob: Option<BlobParams>,
}

impl HeaderFork {
    /// The fork of `header` on `chain`, given its parent's total difficulty.
    pub fn of(chain: &ChainSpec, header: &Header, parent_total_difficulty: U256) -> Self {
        let merged = chain.is_merged(header.number, parent_total_difficulty);
        Self {
            fork: chain.fork_at(header.number, header.timestamp, merged),
            merged,
            blob: chain.blob_params_at(header.number, header.timestamp, merged),
        }
    }

    /// Whether `fork` is active at the header.
    pub fn has(&self, fork: EthereumHardfork) -> bool {
        at_least(self.fork, fork)
    }
}

fn field<T>(value: &Option<T>, name: &'static str, required: bool) -> Result<(), BlockError> {
    if value.is_some() == required {
        Ok(())
    } else {
        Err(BlockError::HeaderField { field: name, present: value.is_some() })
    }
}

/// The proof-of-work difficulty of a header at `number`, `timestamp` after `parent` under
/// `fork`'s formula (Frontier, Homestead EIP-2, Byzantium EIP-100) and bomb delay.
pub fn expected_difficulty(
    fork: EthereumHardfork,
    number: u64,
    timestamp: u64,
    parent: &Header,
) -> U256 {
    let parent_difficulty = parent.difficulty;
    let step = parent_difficulty / U256::from(2048);
    let delta = timestamp.saturating_sub(parent.timestamp);
    // The adjustment factor, a signed integer in [-99, 2].
    let factor: i64 = if at_least(fork, EthereumHardfork::Byzantium) {
        let y = if parent.ommers_hash == EMPTY_OMMER_ROOT_HASH { 1 } else { 2 };
        (y - (delta / 9).min(1_000) as i64).max(-99)
    } else if at_least(fork, EthereumHardfork::Homestead) {
        (1 - (delta / 10).min(1_000) as i64).max(-99)
    } else if delta < 13 {
        1
    } else {
        -1
    };
    let adjustment = step * U256::from(factor.unsigned_abs());
    let mut difficulty = if factor >= 0 {
        parent_difficulty.saturating_add(adjustment)
    } else {
        parent_difficulty.saturating_sub(adjustment)
    };
    let fake_number = number.checked_sub(bomb_delay(fork));
    if let Some(periods) = fake_number.map(|n| n / 100_000).and_then(|p| p.checked_sub(2)) {
        difficulty = difficulty.saturating_add(U256::from(1) << periods.min(255) as usize);
    }
    difficulty.max(U256::from(MIN_DIFFICULTY))
}

/// Checks `header` against its `parent` under `at` (the header's fork) on `chain`.
pub fn validate_header(
    chain: &ChainSpec,
    header: &Header,
    parent: &Header,
    at: HeaderFork,
) -> Result<(), BlockError> {
    if Some(header.number) != parent.number.checked_add(1) {
        return Err(BlockError::Number { got: header.number, parent: parent.number });
    }
    if header.timestamp <= parent.timestamp {
        return Err(BlockError::Timestamp { got: header.timestamp, parent: parent.timestamp });
    }
    if header.extra_data.len() > MAX_EXTRA_DATA {
        return Err(BlockError::ExtraDataTooLong(header.extra_data.len()));
    }
    if let Some(dao) = chain.dao_block() {
        if (dao..dao.saturating_add(10)).contains(&header.number)
            && header.extra_data.as_ref() != DAO_EXTRA_DATA
        {
            return Err(BlockError::DaoExtraData);
        }
    }
    if header.gas_used > header.gas_limit {
        return Err(BlockError::GasUsedAboveLimit {
            gas_used: header.gas_used,
            gas_limit: header.gas_limit,
        });
    }
    if header.gas_limit > MAX_GAS_LIMIT {
        return Err(BlockError::GasLimitAboveMax(header.gas_limit));
    }
    let london = at.has(EthereumHardfork::London);
    let parent_gas_limit = if london && chain.london_block() == Some(header.number) {
        parent.gas_limit.saturating_mul(BaseFeeParams::ethereum().elasticity_multiplier as u64)
    } else {
        parent.gas_limit
    };
    let bound = parent_gas_limit / 1024;
    if header.gas_limit >= parent_gas_limit.saturating_add(bound)
        || header.gas_limit <= parent_gas_limit.saturating_sub(bound)
        || header.gas_limit < MIN_GAS_LIMIT
    {
        return Err(BlockError::GasLimit { got: header.gas_limit, parent: parent_gas_limit });
    }

    field(&header.base_fee_per_gas, "baseFeePerGas", london)?;
    field(&header.withdrawals_root, "withdrawalsRoot", at.has(EthereumHardfork::Shanghai))?;
    let cancun = at.has(EthereumHardfork::Cancun);
    field(&header.blob_gas_used, "blobGasUsed", cancun)?;
    field(&header.excess_blob_gas, "excessBlobGas", cancun)?;
    field(&header.parent_beacon_block_root, "parentBeaconBlockRoot", cancun)?;
    field(&header.requests_hash, "requestsHash", at.has(EthereumHardfork::Prague))?;
    field(&header.block_access_list_hash, "blockAccessListHash", false)?;

    if london {
        let expected = if chain.london_block() == Some(header.number) {
            INITIAL_BASE_FEE
        } else {
            calc_next_block_base_fee(
                parent.gas_used,
                parent.gas_limit,
                parent.base_fee_per_gas.unwrap_or(INITIAL_BASE_FEE),
                BaseFeeParams::ethereum(),
            )
        };
        if header.base_fee_per_gas != Some(expected) {
            return Err(BlockError::BaseFee {
                got: header.base_fee_per_gas,
                expected: Some(expected),
            });
        }
    }

    if at.merged {
        if !header.difficulty.is_zero() {
            return Err(BlockError::PostMerge("a non-zero difficulty"));
        }
        if header.nonce != B64::ZERO {
            return Err(BlockError::PostMerge("a non-zero nonce"));
        }
        if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
            return Err(BlockError::PostMerge("ommers"));
        }
    } else {
        let expected = expected_difficulty(at.fork, header.number, header.timestamp, parent);
        if header.difficulty != expected {
            return Err(BlockError::Difficulty { got: header.difficulty, expected });
        }
    }

    if let (Some(params), Some(got)) = (at.blob, header.excess_blob_gas) {
        let expected = params.next_block_excess_blob_gas_osaka(
            parent.excess_blob_gas.unwrap_or_default(),
            parent.blob_gas_used.unwrap_or_default(),
            parent.base_fee_per_gas.unwrap_or_default(),
        );
        if got != expected {
            return Err(BlockError::ExcessBlobGas { got, expected });
        }
        if let Some(used) = header.blob_gas_used {
            if used > params.max_blob_gas_per_block() {
                return Err(BlockError::BlobGasAboveMax {
                    got: used,
                    max: params.max_blob_gas_per_block(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontier_parent() -> Header {
        Header {
            number: 1,
            timestamp: 100,
            difficulty: U256::from(MIN_DIFFICULTY * 4),
            gas_limit: 3_141_592,
            ..Default::default()
        }
    }

    #[test]
    fn difficulty_follows_each_fork_formula() {
        let parent = frontier_parent();
        let step = parent.difficulty / U256::from(2048);
        // Frontier: up when under 13 seconds, down otherwise.
        assert_eq!(
            expected_difficulty(EthereumHardfork::Frontier, 2, 112, &parent),
            parent.difficulty + step
        );
        assert_eq!(
            expected_difficulty(EthereumHardfork::Frontier, 2, 113, &parent),
            parent.difficulty - step
        );
        // Homestead: 1 - delta/10, at least -99.
        assert_eq!(
            expected_difficulty(EthereumHardfork::Homestead, 2, 125, &parent),
            parent.difficulty - step
        );
        // Byzantium: parent without ommers, 1 - delta/9.
        assert_eq!(
            expected_difficulty(EthereumHardfork::Byzantium, 2, 108, &parent),
            parent.difficulty + step
        );
        // Never below the minimum.
        let low = Header { difficulty: U256::from(MIN_DIFFICULTY), ..parent.clone() };
        assert_eq!(
            expected_difficulty(EthereumHardfork::Homestead, 2, 10_000, &low),
            U256::from(MIN_DIFFICULTY)
        );
    }

    #[test]
    fn bomb_starts_at_period_two_after_the_delay() {
        let parent = Header { number: 199_999, timestamp: 100, ..frontier_parent() };
        let without = expected_difficulty(EthereumHardfork::Frontier, 199_999, 112, &parent);
        let with = expected_difficulty(EthereumHardfork::Frontier, 200_000, 112, &parent);
        assert_eq!(with - without, U256::from(1));
        let byzantium = expected_difficulty(EthereumHardfork::Byzantium, 3_200_000, 105, &parent);
        assert_eq!(byzantium, parent.difficulty + parent.difficulty / U256::from(2048) + U256::ONE);
    }
}
