//! `lanes blocktest`: every case of Ethereum blockchain-test files imported block by block,
//! the transactions through the parallel engine.
//!
//! A case passes when the genesis matches its hash, every valid block imports with the
//! fixture's hash (so with its state root, receipts root, ...), every block with
//! `expectException` is rejected, the head is `lastblockhash` and the head's state equals
//! `postState` (or has the root `postStateHash`).

use indicatif::{ProgressBar, ProgressStyle};
use lanes_block::{Chain, ChainSpec, NetworkError};
use lanes_executor::Engine;
use lanes_fixtures::{
    blocktest::{self, BlockTestCase, PostState},
    walk,
};
use lanes_state::InMemoryState;
use rayon::prelude::*;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

/// Arguments of `lanes blocktest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Blockchain-test files or directories holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads of the parallel engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Files run at the same time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: BTreeMap<String, usize>,
}

/// Why a case is not run, or `None` to run it.
fn skip_reason(case: &BlockTestCase) -> Option<String> {
    if case.seal_engine.as_deref().is_some_and(|s| s != "NoProof") {
        return Some("ethash seal (proof of work is not verified)".into());
    }
    None
}

/// Describes the first account where `got` and `expected` differ.
fn first_difference(got: &InMemoryState, expected: &InMemoryState) -> String {
    let mut addresses: Vec<_> = got.iter().map(|(a, _)| *a).collect();
    addresses.extend(expected.iter().map(|(a, _)| *a));
    addresses.sort();
    addresses.dedup();
    for address in addresses {
        match (got.get(&address), expected.get(&address)) {
            (Some(g), Some(e)) if g == e => {}
            (Some(g), Some(e)) => {
                let what = if g.balance != e.balance {
                    format!("balance {} != expected {}", g.balance, e.balance)
                } else if g.nonce != e.nonce {
                    format!("nonce {} != expected {}", g.nonce, e.nonce)
                } else if g.code_hash != e.code_hash {
                    format!("code hash {} != expected {}", g.code_hash, e.code_hash)
                } else {
                    let slot = g
                        .storage
                        .iter()
                        .find(|(k, v)| e.storage.get(*k) != Some(*v))
                        .map(|(k, v)| (*k, *v, e.storage.get(k).copied().unwrap_or_default()))
                        .or_else(|| {
                            e.storage
                                .iter()
                                .find(|(k, _)| !g.storage.contains_key(*k))
                                .map(|(k, v)| (*k, Default::default(), *v))
                        });
                    match slot {
                        Some((k, g, e)) => format!("slot {k:#x} = {g:#x} != expected {e:#x}"),
                        None => "differs".into(),
                    }
                };
                return format!("account {address}: {what}");
            }
            (Some(_), None) => return format!("account {address} exists, expected absent"),
            (None, Some(_)) => return format!("account {address} absent, expected present"),
            (None, None) => {}
        }
    }
    "no account differs".into()
}

/// Runs one case; `Err` says why it failed.
fn check(case: &BlockTestCase, threads: usize) -> Result<(), String> {
    let mut spec = ChainSpec::from_network(&case.network, case.chain_id)
        .map_err(|e| format!("network: {e}"))?;
    for (fork, params) in &case.blob_schedule {
        spec.set_blob_params(fork, params.target, params.max, params.base_fee_update_fraction)
            .map_err(|e| format!("blobSchedule: {e}"))?;
    }
    let mut chain = Chain::from_genesis_rlp(
        spec,
        &case.genesis_rlp,
        case.pre.clone(),
        Engine::Parallel { threads },
    )
    .map_err(|e| format!("genesis: {e}"))?;
    let genesis = chain.head().0;
    if genesis != case.genesis_hash {
        return Err(format!("genesis hash {genesis} != expected {}", case.genesis_hash));
    }
    for (index, block) in case.blocks.iter().enumerate() {
        let result = match &block.rlp {
            Some(rlp) => chain.import_rlp(rlp).map_err(|e| e.to_string()),
            None => Err("rlp is not hex".to_string()),
        };
        match (result, &block.expect_exception) {
            (Ok(imported), None) => {
                if let Some(expected) = block.hash {
                    if imported.hash != expected {
                        return Err(format!(
                            "block #{index}: hash {} != expected {expected}",
                            imported.hash
                        ));
                    }
                }
            }
            (Err(_), Some(_)) => {}
            (Ok(imported), Some(exception)) => {
                return Err(format!(
                    "block #{index} ({}, number {}): imported, expected {exception}",
                    imported.hash, imported.number
                ))
            }
            (Err(error), None) => return Err(format!("block #{index}: {error}")),
        }
    }
    let (head, stored) = chain.head();
    if head != case.last_block_hash {
        return Err(format!("head {head} != lastblockhash {}", case.last_block_hash));
    }
    match &case.post {
        PostState::Root(root) => {
            let got = stored.state.state_root();
            if got != *root {
                return Err(format!("post-state root {got} != postStateHash {root}"));
            }
        }
        PostState::Full(expected) => {
            let got = stored.state.state_root();
            let want = expected.state_root();
            if got != want {
                return Err(format!(
                    "post-state root {got} != postState's {want}: {}",
                    first_difference(&stored.state, expected)
                ));
            }
        }
    }
    Ok(())
}

fn run_file(path: &Path, threads: usize, progress: &ProgressBar) -> Tally {
    let mut tally = Tally::default();
    let cases = match blocktest::load(path) {
        Ok(cases) => cases,
        Err(error) => {
            progress.suspend(|| println!("FAIL {error}"));
            tally.failed += 1;
            return tally;
        }
    };
    for case in &cases {
        if let Some(reason) = skip_reason(case) {
            *tally.skipped.entry(reason).or_default() += 1;
            continue;
        }
        if let Err(NetworkError::ConstantinopleUnfixed(_)) =
            ChainSpec::from_network(&case.network, case.chain_id)
        {
            *tally
                .skipped
                .entry(
                    "network Constantinople (pre-Petersburg rules, never activated; revm \
                     implements only Petersburg)"
                        .into(),
                )
                .or_default() += 1;
            continue;
        }
        match check(case, threads) {
            Ok(()) => tally.passed += 1,
            Err(reason) => {
                tally.failed += 1;
                progress.suspend(|| {
                    println!(
                        "FAIL {} :: {} [{}]: {reason}",
                        path.display(),
                        case.name,
                        case.network
                    )
                });
            }
        }
    }
    tally
}

/// Runs the command; `Ok(false)` when a case failed.
pub(crate) fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let files = walk::json_files(&args.paths)?;
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} files {msg}",
    )?);
    let started = Instant::now();
    let total = Mutex::new(Tally::default());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    pool.install(|| {
        files.par_iter().for_each(|path| {
            let tally = run_file(path, args.threads, &progress);
            progress.inc(1);
            let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
            total.passed += tally.passed;
            total.failed += tally.failed;
            for (reason, count) in tally.skipped {
                *total.skipped.entry(reason).or_default() += count;
            }
        })
    });
    progress.finish_and_clear();
    let total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "{} files, {} threads per block, {:.1} s",
        files.len(),
        args.threads,
        started.elapsed().as_secs_f64()
    );
    for (reason, count) in &total.skipped {
        println!("skipped {count}: {reason}");
    }
    let skipped: usize = total.skipped.values().sum();
    println!("{} passed, {} failed, {} skipped", total.passed, total.failed, skipped);
    Ok(total.failed == 0)
}
