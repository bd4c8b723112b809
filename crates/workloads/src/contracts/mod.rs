//! The contracts the workloads use: for each, how to install it in a pre-state (runtime code
//! plus the storage slots it needs, following its compiler's storage layout) and how to call it.

pub mod coinbase_probe;
pub mod counter;
pub mod create2;
pub mod delegate;
pub mod erc20;
pub mod faulty;
pub mod payees;
pub mod uniswap;
