//! The built-in synthetic workloads, each sized to about a gigagas (the industry's comparison
//! point): the transaction count is derived from the gas a small probe block of the same
//! workload uses.

use crate::measure::BenchError;
use lanes_executor::{execute, Engine};
use lanes_workloads::{erc20, hot_contention, raw_transfers, transfer_chain, uniswap, Workload};

/// One gigagas.
pub const GIGAGAS: u64 = 1_000_000_000;

/// A named synthetic workload.
#[derive(Clone, Copy, Debug)]
pub struct BuiltIn {
    /// The name `--workload` takes.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    generate: fn(usize, u64) -> Workload,
}

fn hot_10(size: usize, seed: u64) -> Workload {
    hot_contention(size, seed, 0.10)
}
fn hot_30(size: usize, seed: u64) -> Workload {
    hot_contention(size, seed, 0.30)
}
fn hot_100(size: usize, seed: u64) -> Workload {
    hot_contention(size, seed, 1.0)
}

/// Every built-in workload, in the order `lanes bench` runs them.
pub const BUILT_INS: [BuiltIn; 7] = [
    BuiltIn {
        name: "raw-transfers",
        description: "independent ether transfers, each between its own two accounts",
        generate: raw_transfers,
    },
    BuiltIn {
        name: "erc20",
        description: "ERC-20 transfers (OpenZeppelin) between distinct pairs",
        generate: erc20,
    },
    BuiltIn {
        name: "uniswap",
        description: "Uniswap V2 swaps through the router, each on its own pool",
        generate: uniswap,
    },
    BuiltIn {
        name: "hot-10",
        description: "10% of transactions read-modify-write one hot storage slot",
        generate: hot_10,
    },
    BuiltIn {
        name: "hot-30",
        description: "30% of transactions read-modify-write one hot storage slot",
        generate: hot_30,
    },
    BuiltIn {
        name: "hot-100",
        description: "every transaction read-modify-writes one hot storage slot",
        generate: hot_100,
    },
    BuiltIn {
        name: "chain",
        description: "transfers from one sender: each depends on the one before",
        generate: transfer_chain,
    },
];

/// The built-in workload called `name`.
pub fn find(name: &str) -> Option<BuiltIn> {
    BUILT_INS.iter().copied().find(|b| b.name == name)
}

impl BuiltIn {
    /// A block of `size` transactions.
    pub fn with_size(&self, size: usize, seed: u64) -> Workload {
        let mut workload = (self.generate)(size, seed);
        workload.name = self.name.to_string();
        workload
    }

    /// A block using about `gas` gas: a 200-transaction probe is executed to learn the gas per
    /// transaction.
    pub fn with_gas(&self, gas: u64, seed: u64) -> Result<Workload, BenchError> {
        const PROBE: usize = 200;
        let probe = self.with_size(PROBE, seed);
        let output = execute(Engine::Sequential, &probe.block, &probe.state).map_err(|e| {
            BenchError::Execution { name: self.name.to_string(), reason: e.to_string() }
        })?;
        let per_tx = (output.gas_used / PROBE as u64).max(1);
        let size = usize::try_from(gas / per_tx).unwrap_or(usize::MAX).max(1);
        Ok(self.with_size(size, seed))
    }
}
