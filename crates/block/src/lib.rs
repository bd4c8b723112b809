//! # Lanes block import
//!
//! Turns a block's RLP into a committed post-state, or rejects it with a typed error naming
//! the rule it broke while leaving the state exactly as it was. The transactions run through
//! the parallel engine of `lanes-executor`; everything around them (the rules of headers and
//! bodies, the system calls, rewards, withdrawals, requests, receipts and the state root) lives
//! here.
//!
//! ## How a block flows
//! ```text
//! RLP ─decode─▶ header + body ─header rules─▶ body rules ─▶ Overlay(parent state)
//!   DAO change, EIP-2935/EIP-4788 calls ─▶ transactions (parallel engine) ─▶ rewards,
//!   withdrawals, EIP-6110 deposits, EIP-7002/EIP-7251 calls ─▶ gas, bloom, receipts root,
//!   requests hash ─▶ state root of (parent state + overlay) ─▶ stored; head by fork choice
//! ```
//!
//! ## Map
//! | concept | file |
//! |---|---|
//! | fork schedule, test networks, blob schedule | [`chainspec`] |
//! | the rules a header must satisfy against its parent | [`header`] |
//! | the block's writes over the parent's state | [`overlay`] |
//! | EIP-4788, EIP-2935, EIP-7002, EIP-7251 system calls | [`system_calls`] |
//! | rewards, withdrawals, the DAO fork, EIP-6110 deposits | [`post_block`] |
//! | the import pipeline, ommer rules, fork choice | [`import`] |
//! | the rules, as errors | [`error`] |

pub mod chainspec;
pub mod error;
pub mod header;
pub mod import;
pub mod overlay;
pub mod post_block;
pub mod system_calls;

pub use alloy_hardforks::EthereumHardfork;
pub use chainspec::{ChainSpec, NetworkError};
pub use error::{BlockError, ImportError, SystemCallFailure};
pub use header::HeaderFork;
pub use import::{check_body, execute_block, Chain, Executed, Imported, Receipts, StoredBlock};
