//! The workloads: one function per kind of block, each taking a size (the number of
//! transactions) and a seed, and returning a [`Workload`]. The same arguments always give the
//! same workload.

mod beneficiary;
mod contention;
mod create2;
mod eip7702;
mod erc20;
mod faults;
mod mixed;
mod transfers;
mod uniswap;

pub use beneficiary::beneficiary_read;
pub use contention::hot_contention;
pub use create2::create2_selfdestruct;
pub use eip7702::eip7702;
pub use erc20::erc20;
pub use faults::reverts_and_oog;
pub use mixed::{mixed, payouts};
pub use transfers::{hot_recipient, raw_transfers, transfer_chain};
pub use uniswap::{uniswap, uniswap_shared_pool};

use crate::Workload;
use lanes_executor::revm::primitives::hardfork::SpecId;

/// Every workload kind at `size` transactions with `seed`: the benchmark suite. Hot contention
/// comes at shares 0.1, 0.3 and 1.0; CREATE2 and SELFDESTRUCT under Shanghai and Cancun.
pub fn standard(size: usize, seed: u64) -> Vec<Workload> {
    vec![
        raw_transfers(size, seed),
        transfer_chain(size, seed),
        hot_recipient(size, seed),
        erc20(size, seed),
        uniswap(size, seed),
        uniswap_shared_pool(size, seed),
        create2_selfdestruct(size, seed, SpecId::SHANGHAI),
        create2_selfdestruct(size, seed, SpecId::CANCUN),
        reverts_and_oog(size, seed),
        beneficiary_read(size, seed),
        eip7702(size, seed),
        hot_contention(size, seed, 0.1),
        hot_contention(size, seed, 0.3),
        hot_contention(size, seed, 1.0),
    ]
}

/// The conventional name of a workload.
fn name(kind: &str, size: usize, seed: u64) -> String {
    format!("{kind}/{size}/seed={seed}")
}
