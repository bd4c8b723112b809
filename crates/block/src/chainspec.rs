//! The chain specification: which fork rules apply to a block, and the blob schedule.
//!
//! Forks activate by block number (Frontier to London), by total difficulty (Paris, the merge)
//! or by timestamp (Shanghai on). [`ChainSpec::mainnet`] is Ethereum mainnet's schedule (from
//! `alloy-hardforks`); [`ChainSpec::from_network`] builds the test networks of Ethereum's
//! blockchain tests: a single fork from genesis (`Cancun`), or a transition at block 5
//! (`BerlinToLondonAt5`), at timestamp 15,000 (`CancunToPragueAtTime15k`,
//! `OsakaToBPO1AtTime15k`) or at total difficulty `0xC0000`
//! (`ArrowGlacierToParisAtDiffC0000`).
//!
//! The blob schedule (EIP-7691, EIP-7840, EIP-7892 BPO forks, EIP-7918's reserve price from
//! Osaka on) gives, per blob-carrying fork, the target and maximum blobs per block and the base
//! fee update fraction; fixtures may override it with `config.blobSchedule`.

use alloy_eips::{eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS, eip7840::BlobParams};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, U256};
use revm::primitives::hardfork::SpecId;
use std::collections::BTreeMap;

/// Forks in activation order, as far as a test network can name them.
const ORDER: [EthereumHardfork; 24] = [
    EthereumHardfork::Frontier,
    EthereumHardfork::Homestead,
    EthereumHardfork::Dao,
    EthereumHardfork::Tangerine,
    EthereumHardfork::SpuriousDragon,
    EthereumHardfork::Byzantium,
    EthereumHardfork::Constantinople,
    EthereumHardfork::Petersburg,
    EthereumHardfork::Istanbul,
    EthereumHardfork::MuirGlacier,
    EthereumHardfork::Berlin,
    EthereumHardfork::London,
    EthereumHardfork::ArrowGlacier,
    EthereumHardfork::GrayGlacier,
    EthereumHardfork::Paris,
    EthereumHardfork::Shanghai,
    EthereumHardfork::Cancun,
    EthereumHardfork::Prague,
    EthereumHardfork::Osaka,
    EthereumHardfork::Bpo1,
    EthereumHardfork::Bpo2,
    EthereumHardfork::Bpo3,
    EthereumHardfork::Bpo4,
    EthereumHardfork::Bpo5,
];

/// Why a network name is not a chain specification Lanes can build.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// A fork name that is not in the schedule.
    #[error("unknown fork {0:?} in network name")]
    UnknownFork(String),
    /// `Constantinople` as first scheduled (EIP-1283 net metering): never activated on
    /// mainnet; revm implements only the Petersburg rules.
    #[error("network {0:?} uses Constantinople before Petersburg, which revm does not implement")]
    ConstantinopleUnfixed(String),
    /// Blob parameters that cannot be right: a zero update fraction (the blob base fee would
    /// divide by it) or a target above the maximum.
    #[error(
        "blob schedule target {target}, max {max}, update fraction {update_fraction} is invalid"
    )]
    BlobSchedule {
        /// Target blobs per block.
        target: u64,
        /// Most blobs per block.
        max: u64,
        /// Base fee update fraction.
        update_fraction: u128,
    },
    /// A transition whose second fork comes before its first.
    #[error("network {0:?} goes back in the fork order")]
    Backwards(String),
}

/// The rules of a chain: fork activations, blob schedule, chain id, deposit contract.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// Chain id (EIP-155).
    pub chain_id: u64,
    hardforks: EthereumChainHardforks,
    blob_schedule: BTreeMap<EthereumHardfork, BlobParams>,
    /// The EIP-6110 deposit contract whose logs become deposit requests.
    pub deposit_contract: Address,
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks.ethereum_fork_activation(fork)
    }
}

/// The default blob parameters of each blob-carrying fork.
fn default_blob_schedule() -> BTreeMap<EthereumHardfork, BlobParams> {
    BTreeMap::from([
        (EthereumHardfork::Cancun, BlobParams::cancun()),
        (EthereumHardfork::Prague, BlobParams::prague()),
        (EthereumHardfork::Osaka, BlobParams::osaka()),
        (EthereumHardfork::Bpo1, BlobParams::bpo1()),
        (EthereumHardfork::Bpo2, BlobParams::bpo2()),
    ])
}

/// The fork a test network name stands for (`EIP150`, `ConstantinopleFix`, `Merge`, ...).
fn fork_by_name(name: &str) -> Option<EthereumHardfork> {
    Some(match name {
        "Frontier" => EthereumHardfork::Frontier,
        "Homestead" => EthereumHardfork::Homestead,
        "Dao" | "DAO" => EthereumHardfork::Dao,
        "EIP150" | "Tangerine" | "TangerineWhistle" => EthereumHardfork::Tangerine,
        "EIP158" | "SpuriousDragon" => EthereumHardfork::SpuriousDragon,
        "Byzantium" => EthereumHardfork::Byzantium,
        "ConstantinopleFix" | "Petersburg" => EthereumHardfork::Petersburg,
        "Istanbul" => EthereumHardfork::Istanbul,
        "MuirGlacier" => EthereumHardfork::MuirGlacier,
        "Berlin" => EthereumHardfork::Berlin,
        "London" => EthereumHardfork::London,
        "ArrowGlacier" => EthereumHardfork::ArrowGlacier,
        "GrayGlacier" => EthereumHardfork::GrayGlacier,
        "Paris" | "Merge" => EthereumHardfork::Paris,
        "Shanghai" => EthereumHardfork::Shanghai,
        "Cancun" => EthereumHardfork::Cancun,
        "Prague" => EthereumHardfork::Prague,
        "Osaka" => EthereumHardfork::Osaka,
        "BPO1" => EthereumHardfork::Bpo1,
        "BPO2" => EthereumHardfork::Bpo2,
        "BPO3" => EthereumHardfork::Bpo3,
        "BPO4" => EthereumHardfork::Bpo4,
        "BPO5" => EthereumHardfork::Bpo5,
        _ => return None,
    })
}

fn position(fork: EthereumHardfork) -> usize {
    ORDER.iter().position(|f| *f == fork).unwrap_or(ORDER.len())
}

/// Whether `fork` activates by timestamp (Shanghai and later).
fn by_timestamp(fork: EthereumHardfork) -> bool {
    position(fork) >= position(EthereumHardfork::Shanghai)
}

/// How a transition network switches to its second fork.
#[derive(Clone, Copy, Debug)]
enum Switch {
    Block(u64),
    Timestamp(u64),
    TotalDifficulty(U256),
}

impl ChainSpec {
    /// Ethereum mainnet.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            hardforks: EthereumChainHardforks::mainnet(),
            blob_schedule: default_blob_schedule(),
            deposit_contract: MAINNET_DEPOSIT_CONTRACT_ADDRESS,
        }
    }

    /// The test network called `network` in Ethereum's blockchain tests, on chain `chain_id`.
    pub fn from_network(network: &str, chain_id: u64) -> Result<Self, NetworkError> {
        let unknown = || NetworkError::UnknownFork(network.to_string());
        if network == "Constantinople" || network.ends_with("ToConstantinopleAt5") {
            return Err(NetworkError::ConstantinopleUnfixed(network.to_string()));
        }
        let (first, second) = match network.split_once("To") {
            None => (network, None),
            Some((first, rest)) => {
                let (fork, switch) = if let Some(fork) = rest.strip_suffix("AtTime15k") {
                    (fork, Switch::Timestamp(15_000))
                } else if let Some(fork) = rest.strip_suffix("At5") {
                    (fork, Switch::Block(5))
                } else if let Some((fork, diff)) = rest.split_once("AtDiff") {
                    let ttd = U256::from_str_radix(diff, 16).map_err(|_| unknown())?;
                    (fork, Switch::TotalDifficulty(ttd))
                } else {
                    return Err(unknown());
                };
                (first, Some((fork_by_name(fork).ok_or_else(unknown)?, switch)))
            }
        };
        let first = fork_by_name(first).ok_or_else(unknown)?;
        let first_at = position(first);
        if second.is_some_and(|(to, _)| position(to) <= first_at) {
            return Err(NetworkError::Backwards(network.to_string()));
        }
        let mut forks = Vec::new();
        for (index, fork) in ORDER.iter().copied().enumerate() {
            // The DAO fork is only part of a network that names it.
            if fork == EthereumHardfork::Dao
                && first != EthereumHardfork::Dao
                && second.map(|(f, _)| f) != Some(EthereumHardfork::Dao)
            {
                continue;
            }
            let condition = if index <= first_at {
                if by_timestamp(fork) {
                    ForkCondition::ZERO_TIMESTAMP
                } else {
                    ForkCondition::ZERO_BLOCK
                }
            } else {
                match second {
                    Some((to, switch)) if index <= position(to) => {
                        match switch {
                            // Forks between the two that go by timestamp (none in the fixtures)
                            // would switch at the same height.
                            Switch::Block(n) if by_timestamp(fork) => ForkCondition::Timestamp(n),
                            Switch::Block(n) => ForkCondition::Block(n),
                            Switch::Timestamp(t) if by_timestamp(fork) => {
                                ForkCondition::Timestamp(t)
                            }
                            Switch::Timestamp(_) => ForkCondition::ZERO_BLOCK,
                            Switch::TotalDifficulty(ttd) => ForkCondition::TTD {
                                activation_block_number: u64::MAX,
                                fork_block: None,
                                total_difficulty: ttd,
                            },
                        }
                    }
                    _ => break,
                }
            };
            forks.push((fork, condition));
        }
        // Constantinople and Petersburg activate together (ConstantinopleFix).
        Ok(Self {
            chain_id,
            hardforks: EthereumChainHardforks::new(forks),
            blob_schedule: default_blob_schedule(),
            deposit_contract: MAINNET_DEPOSIT_CONTRACT_ADDRESS,
        })
    }

    /// Replaces the blob parameters of `fork` (a fixture's `config.blobSchedule`). From Osaka
    /// on, EIP-7594 caps blobs per transaction at 6 and EIP-7918's reserve price applies.
    pub fn set_blob_params(
        &mut self,
        fork: &str,
        target: u64,
        max: u64,
        update_fraction: u128,
    ) -> Result<(), NetworkError> {
        let fork = fork_by_name(fork).ok_or_else(|| NetworkError::UnknownFork(fork.into()))?;
        if update_fraction == 0 || target > max {
            return Err(NetworkError::BlobSchedule { target, max, update_fraction });
        }
        let base = if position(fork) >= position(EthereumHardfork::Osaka) {
            BlobParams::osaka()
        } else {
            BlobParams::cancun()
        };
        let osaka = position(fork) >= position(EthereumHardfork::Osaka);
        self.blob_schedule.insert(
            fork,
            BlobParams {
                target_blob_count: target,
                max_blob_count: max,
                update_fraction,
                max_blobs_per_tx: if osaka { base.max_blobs_per_tx.min(max) } else { max },
                ..base
            },
        );
        Ok(())
    }

    /// Whether the merge (Paris) rules apply to a block whose parent's total difficulty is
    /// `parent_total_difficulty`.
    pub fn is_merged(&self, number: u64, parent_total_difficulty: U256) -> bool {
        match self.ethereum_fork_activation(EthereumHardfork::Paris) {
            ForkCondition::TTD { total_difficulty, activation_block_number, .. } => {
                parent_total_difficulty >= total_difficulty || number >= activation_block_number
            }
            condition => condition.active_at_block(number),
        }
    }

    /// The latest fork active at a block, with `merged` from [`Self::is_merged`].
    pub fn fork_at(&self, number: u64, timestamp: u64, merged: bool) -> EthereumHardfork {
        let mut latest = EthereumHardfork::Frontier;
        for fork in ORDER {
            let active = match self.ethereum_fork_activation(fork) {
                ForkCondition::Block(n) => number >= n,
                ForkCondition::Timestamp(t) => merged && timestamp >= t,
                ForkCondition::TTD { .. } => merged,
                ForkCondition::Never => false,
            };
            if active {
                latest = fork;
            }
        }
        latest
    }

    /// The revm rules of a block at `number` and `timestamp`.
    pub fn spec_at(&self, number: u64, timestamp: u64, merged: bool) -> SpecId {
        spec_of(self.fork_at(number, timestamp, merged))
    }

    /// Whether `fork` is active for the block at `number`, `timestamp`.
    pub fn is_active(
        &self,
        fork: EthereumHardfork,
        number: u64,
        timestamp: u64,
        merged: bool,
    ) -> bool {
        position(self.fork_at(number, timestamp, merged)) >= position(fork)
            && !matches!(self.ethereum_fork_activation(fork), ForkCondition::Never)
    }

    /// The block at which the DAO fork's irregular state change happens, if scheduled.
    pub fn dao_block(&self) -> Option<u64> {
        match self.ethereum_fork_activation(EthereumHardfork::Dao) {
            ForkCondition::Block(n) => Some(n),
            _ => None,
        }
    }

    /// The first block of London (its parent's gas limit doubles, its base fee is the initial
    /// one), if it activates by block.
    pub fn london_block(&self) -> Option<u64> {
        match self.ethereum_fork_activation(EthereumHardfork::London) {
            ForkCondition::Block(n) => Some(n),
            _ => None,
        }
    }

    /// The blob parameters of a block (`None` before Cancun).
    pub fn blob_params_at(&self, number: u64, timestamp: u64, merged: bool) -> Option<BlobParams> {
        let fork = self.fork_at(number, timestamp, merged);
        self.blob_schedule
            .range(..=fork)
            .next_back()
            .map(|(_, params)| *params)
            .filter(|_| position(fork) >= position(EthereumHardfork::Cancun))
    }
}

/// The revm rules of `fork` (blob-only forks keep Osaka's).
pub fn spec_of(fork: EthereumHardfork) -> SpecId {
    match fork {
        EthereumHardfork::Frontier => SpecId::FRONTIER,
        EthereumHardfork::Homestead | EthereumHardfork::Dao => SpecId::HOMESTEAD,
        EthereumHardfork::Tangerine => SpecId::TANGERINE,
        EthereumHardfork::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
        EthereumHardfork::Byzantium => SpecId::BYZANTIUM,
        EthereumHardfork::Constantinople | EthereumHardfork::Petersburg => SpecId::PETERSBURG,
        EthereumHardfork::Istanbul | EthereumHardfork::MuirGlacier => SpecId::ISTANBUL,
        EthereumHardfork::Berlin => SpecId::BERLIN,
        // The glaciers only move the difficulty bomb: London's EVM rules.
        EthereumHardfork::London
        | EthereumHardfork::ArrowGlacier
        | EthereumHardfork::GrayGlacier => SpecId::LONDON,
        EthereumHardfork::Paris => SpecId::MERGE,
        EthereumHardfork::Shanghai => SpecId::SHANGHAI,
        EthereumHardfork::Cancun => SpecId::CANCUN,
        EthereumHardfork::Prague => SpecId::PRAGUE,
        EthereumHardfork::Osaka
        | EthereumHardfork::Bpo1
        | EthereumHardfork::Bpo2
        | EthereumHardfork::Bpo3
        | EthereumHardfork::Bpo4
        | EthereumHardfork::Bpo5 => SpecId::OSAKA,
        // Amsterdam, Bogota and any later fork alloy-hardforks adds.
        _ => SpecId::AMSTERDAM,
    }
}

/// The difficulty-bomb delay (in blocks) of the rules of `fork` (EIP-649, EIP-1234, EIP-2384,
/// EIP-3554, EIP-4345, EIP-5133).
pub fn bomb_delay(fork: EthereumHardfork) -> u64 {
    match position(fork) {
        p if p >= position(EthereumHardfork::GrayGlacier) => 11_400_000,
        p if p >= position(EthereumHardfork::ArrowGlacier) => 10_700_000,
        p if p >= position(EthereumHardfork::London) => 9_700_000,
        p if p >= position(EthereumHardfork::MuirGlacier) => 9_000_000,
        p if p >= position(EthereumHardfork::Constantinople) => 5_000_000,
        p if p >= position(EthereumHardfork::Byzantium) => 3_000_000,
        _ => 0,
    }
}

/// Whether `a` activates no later than `b` in the fork order.
pub fn at_least(a: EthereumHardfork, b: EthereumHardfork) -> bool {
    position(a) >= position(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_fork_networks_start_at_genesis() {
        let spec = ChainSpec::from_network("Cancun", 1).unwrap();
        assert_eq!(spec.spec_at(1, 1, true), SpecId::CANCUN);
        assert_eq!(spec.blob_params_at(1, 1, true), Some(BlobParams::cancun()));
        let spec = ChainSpec::from_network("ConstantinopleFix", 1).unwrap();
        assert_eq!(spec.spec_at(1, 1, false), SpecId::PETERSBURG);
        assert_eq!(spec.dao_block(), None);
    }

    #[test]
    fn transitions_switch_at_the_named_point() {
        let spec = ChainSpec::from_network("CancunToPragueAtTime15k", 1).unwrap();
        assert_eq!(spec.spec_at(1, 14_999, true), SpecId::CANCUN);
        assert_eq!(spec.spec_at(2, 15_000, true), SpecId::PRAGUE);
        let spec = ChainSpec::from_network("BerlinToLondonAt5", 1).unwrap();
        assert_eq!(spec.spec_at(4, 0, false), SpecId::BERLIN);
        assert_eq!(spec.spec_at(5, 0, false), SpecId::LONDON);
        assert_eq!(spec.london_block(), Some(5));
        let spec = ChainSpec::from_network("HomesteadToDaoAt5", 1).unwrap();
        assert_eq!(spec.dao_block(), Some(5));
        let spec = ChainSpec::from_network("ArrowGlacierToParisAtDiffC0000", 1).unwrap();
        assert!(!spec.is_merged(3, U256::from(0xbffff)));
        assert!(spec.is_merged(3, U256::from(0xc0000)));
        let spec = ChainSpec::from_network("OsakaToBPO1AtTime15k", 1).unwrap();
        assert_eq!(spec.blob_params_at(1, 14_999, true), Some(BlobParams::osaka()));
        assert_eq!(spec.blob_params_at(2, 15_000, true), Some(BlobParams::bpo1()));
        assert_eq!(spec.spec_at(2, 15_000, true), SpecId::OSAKA);
    }

    #[test]
    fn impossible_blob_parameters_are_errors() {
        let mut spec = ChainSpec::from_network("Cancun", 1).unwrap();
        assert!(spec.set_blob_params("Cancun", 3, 6, 0).is_err());
        assert!(spec.set_blob_params("Cancun", 7, 6, 1).is_err());
        assert!(spec.set_blob_params("Cancun", 3, 6, 3_338_477).is_ok());
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(matches!(ChainSpec::from_network("Nope", 1), Err(NetworkError::UnknownFork(_))));
        assert!(matches!(
            ChainSpec::from_network("Constantinople", 1),
            Err(NetworkError::ConstantinopleUnfixed(_))
        ));
        assert!(matches!(
            ChainSpec::from_network("PragueToCancunAtTime15k", 1),
            Err(NetworkError::Backwards(_))
        ));
    }

    #[test]
    fn mainnet_schedule() {
        let spec = ChainSpec::mainnet();
        assert_eq!(spec.spec_at(1_150_000, 0, false), SpecId::HOMESTEAD);
        assert_eq!(spec.spec_at(12_965_000, 0, false), SpecId::LONDON);
        assert_eq!(spec.spec_at(19_426_587, 1_710_338_135, true), SpecId::CANCUN);
        assert_eq!(spec.dao_block(), Some(1_920_000));
    }
}
