//! # Lanes workloads
//!
//! Synthetic blocks built in code, each from a size (its transaction count) and a seed, for the
//! differential tests of the executor and for benchmarks. The same seed always gives the same
//! [`Workload`]: a [`Block`] and the pre-block [`InMemoryState`] it executes on.
//!
//! Contracts are real compiled bytecode (OpenZeppelin's ERC-20, Uniswap V2's pair, factory and
//! router, and a few small contracts of our own compiled with solc; see `assets/README.md`).
//! Nothing is deployed at block time unless the workload is about deployment: the runtime code
//! is put in the pre-state with the storage slots it needs, documented in [`contracts`].
//!
//! ## Map
//! | concept | module |
//! |---|---|
//! | the block environment every workload uses | [`env`](mod@env) |
//! | building a block and its pre-state | [`builder`] |
//! | contracts: bytecode, storage layouts, calls | [`contracts`], [`assets`], [`abi`], [`slots`] |
//! | secp256k1 keys and EIP-7702 authorizations | [`keys`] |
//! | the workloads | [`generators`] |

pub mod abi;
pub mod assets;
pub mod builder;
pub mod contracts;
pub mod env;
pub mod generators;
pub mod keys;
pub mod slots;

pub use builder::BlockBuilder;
pub use generators::{
    beneficiary_read, create2_selfdestruct, eip7702, erc20, hot_contention, hot_recipient, mixed,
    payouts, raw_transfers, reverts_and_oog, standard, transfer_chain, uniswap,
    uniswap_shared_pool,
};

use lanes_executor::Block;
use lanes_state::InMemoryState;

/// A block and the state it executes on.
#[derive(Clone, Debug)]
pub struct Workload {
    /// What the workload is, with its parameters (for example `erc20/1000/seed=7`).
    pub name: String,
    /// The block to execute.
    pub block: Block,
    /// The pre-block state.
    pub state: InMemoryState,
}

impl Workload {
    /// Number of transactions of the block.
    pub fn len(&self) -> usize {
        self.block.transactions.len()
    }

    /// Whether the block has no transaction.
    pub fn is_empty(&self) -> bool {
        self.block.transactions.is_empty()
    }
}
