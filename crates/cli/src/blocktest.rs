//! `lanes blocktest`: every case of Ethereum blockchain-test files imported block by block,
//! the transactions through the parallel engine.
//!
//! A case passes when the genesis matches its hash, every valid block imports with the
//! fixture's hash (so with its state root, receipts root, ...), every block with
//! `expectException` is rejected, the head is `lastblockhash` and the head's state equals
//! `postState` (or has the root `postStateHash`).
//!
//! A mainnet fixture folder (`index.json`, or one `blocks/<number>` folder) runs as whole
//! blocks instead: its pre-state is partial (absent accounts are empty), so the state root
//! cannot be checked, but everything else is: the header hash, the transactions and
//! withdrawals roots recomputed from the decoded body, the system calls, rewards and
//! withdrawals applied, gas used, logs bloom and (Byzantium on) receipts root. The time of the
//! (partial) post-state root is printed beside the execution time.

use crate::exceptions;
use crate::replay::EngineChoice;
use alloy_consensus::{
    proofs::{calculate_transaction_root, calculate_withdrawals_root},
    Block as ConsensusBlock, BlockBody, TxEnvelope,
};
use alloy_primitives::U256;
use indicatif::{ProgressBar, ProgressStyle};
use lanes_block::{
    execute_block, BlockError, Chain, ChainSpec, EthereumHardfork, HeaderFork, NetworkError,
    Receipts,
};
use lanes_executor::Engine;
use lanes_fixtures::mainnet::MainnetFolder;
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
    /// Worker threads of the engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The engine the transactions run on: `parallel` (the default), `lanes` or `auto`.
    #[arg(long, value_enum, default_value_t = EngineChoice::Parallel)]
    engine: EngineChoice,
    /// Files run at the same time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Fail a case whose invalid block is rejected for another rule than the one the
    /// fixture names (by default such rejections are counted and listed, not failed).
    #[arg(long)]
    strict_exceptions: bool,
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: BTreeMap<String, usize>,
    /// Rejections naming the fixture's rule.
    exceptions_matched: usize,
    /// Rejections by the transactions root of blocks whose header leaves out the last
    /// (invalid) transaction: see [`exceptions::root_leaves_out_last_transaction`].
    exceptions_dropped_by_filler: usize,
    /// Rejections naming another rule, by "expected -> found".
    exceptions_other: BTreeMap<String, usize>,
}

/// The name of a rule's variant (`Root`, `Transaction`, ...), with the root's field.
fn rule_name(rule: &BlockError) -> String {
    match rule {
        BlockError::Root { field, .. } => format!("Root({field})"),
        BlockError::HeaderField { field, .. } => format!("HeaderField({field})"),
        other => {
            let debug = format!("{other:?}");
            debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_string()
        }
    }
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

/// Runs one case; `Err` says why it failed. Rejections are recorded in `tally`.
fn check(case: &BlockTestCase, args: &Args, tally: &mut Tally) -> Result<(), String> {
    let engine = args.engine.engine(args.threads);
    let mut spec = ChainSpec::from_network(&case.network, case.chain_id)
        .map_err(|e| format!("network: {e}"))?;
    for (fork, params) in &case.blob_schedule {
        spec.set_blob_params(fork, params.target, params.max, params.base_fee_update_fraction)
            .map_err(|e| format!("blobSchedule: {e}"))?;
    }
    let mut chain = Chain::from_genesis_rlp(spec, &case.genesis_rlp, case.pre.clone(), engine)
        .map_err(|e| format!("genesis: {e}"))?;
    let genesis = chain.head().0;
    if genesis != case.genesis_hash {
        return Err(format!("genesis hash {genesis} != expected {}", case.genesis_hash));
    }
    for (index, block) in case.blocks.iter().enumerate() {
        let result = match &block.rlp {
            Some(rlp) => chain.import_rlp(rlp).map_err(Some),
            None => Err(None),
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
            (Err(None), Some(_)) => tally.exceptions_matched += 1,
            (Err(Some(error)), Some(exception)) => {
                let dropped_by_filler = exception.starts_with("TransactionException.")
                    && matches!(*error.rule, BlockError::Root { field: "transactionsRoot", .. })
                    && block
                        .rlp
                        .as_ref()
                        .is_some_and(|rlp| exceptions::root_leaves_out_last_transaction(rlp));
                if exceptions::matches(exception, &error.rule) {
                    tally.exceptions_matched += 1;
                } else if dropped_by_filler {
                    tally.exceptions_dropped_by_filler += 1;
                } else if args.strict_exceptions {
                    return Err(format!(
                        "block #{index}: rejected by {error}, expected {exception}"
                    ));
                } else {
                    *tally
                        .exceptions_other
                        .entry(format!("{exception} -> {}", rule_name(&error.rule)))
                        .or_default() += 1;
                }
            }
            (Ok(imported), Some(exception)) => {
                return Err(format!(
                    "block #{index} ({}, number {}): imported, expected {exception}",
                    imported.hash, imported.number
                ))
            }
            (Err(Some(error)), None) => return Err(format!("block #{index}: {error}")),
            (Err(None), None) => return Err(format!("block #{index}: rlp is not hex")),
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

fn run_file(path: &Path, args: &Args, progress: &ProgressBar) -> Tally {
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
        match check(case, args, &mut tally) {
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

/// Whether `path` is a mainnet fixture folder or one of its block folders.
fn is_mainnet(path: &Path) -> bool {
    path.join("index.json").is_file() || path.join("block.json").is_file()
}

/// Runs one mainnet block as a whole block; `Ok` carries the line to print.
fn check_mainnet(
    folder: &MainnetFolder,
    number: u64,
    engine: Engine,
) -> Result<String, Box<dyn std::error::Error>> {
    let loaded = folder.load(number)?;
    let rpc = &loaded.rpc;
    let header = rpc.header.inner.clone();
    if header.hash_slow() != rpc.header.hash {
        return Err(format!(
            "header hash {} != the fixture's {}",
            header.hash_slow(),
            rpc.header.hash
        )
        .into());
    }
    let transactions: Vec<TxEnvelope> = rpc
        .transactions
        .as_transactions()
        .ok_or("the block has transaction hashes only")?
        .iter()
        .map(|tx| tx.inner.inner().clone())
        .collect();
    let tx_root = calculate_transaction_root(&transactions);
    if tx_root != header.transactions_root {
        return Err(
            format!("transactionsRoot {} != computed {tx_root}", header.transactions_root).into()
        );
    }
    let withdrawals = rpc.withdrawals.clone();
    if let (Some(withdrawals), Some(root)) = (&withdrawals, header.withdrawals_root) {
        let computed = calculate_withdrawals_root(withdrawals);
        if computed != root {
            return Err(format!("withdrawalsRoot {root} != computed {computed}").into());
        }
    }
    // Ommer headers are not in the fixture (only their hashes): their rewards cannot be paid.
    let ommers = rpc.uncles.len();
    let block = ConsensusBlock {
        header,
        body: BlockBody { transactions, ommers: Vec::new(), withdrawals },
    };
    let spec = ChainSpec::mainnet();
    let at = HeaderFork::of(&spec, &block.header, U256::ZERO);
    let executed = execute_block(
        &spec,
        engine,
        &block,
        at,
        &loaded.state,
        loaded.block.context.block_hashes.known.clone(),
        Receipts::StatusOnly,
    )?;
    let byzantium = at.has(EthereumHardfork::Byzantium);
    executed.check(&block.header, byzantium)?;
    let root_started = Instant::now();
    let mut post = loaded.state.clone();
    post.apply(&executed.changes);
    let _partial_root = post.state_root();
    let root_time = root_started.elapsed();
    Ok(format!(
        "block {number} {} {} txs, {} gas: execute {:.2} ms, senders {:.2} ms, system calls, \
         rewards, receipts {:.2} ms, partial state root {:.2} ms ({} accounts){}",
        loaded.fork,
        executed.outcomes.len(),
        executed.gas_used,
        executed.execute_time.as_secs_f64() * 1e3,
        executed.senders_time.as_secs_f64() * 1e3,
        executed.other_time.as_secs_f64() * 1e3,
        root_time.as_secs_f64() * 1e3,
        post.len(),
        if ommers > 0 {
            format!(", {ommers} ommer rewards not paid (headers absent)")
        } else {
            String::new()
        },
    ))
}

/// Runs every block of the mainnet folders in `paths` as whole blocks.
fn run_mainnet(paths: &[PathBuf], engine: Engine) -> Result<Tally, Box<dyn std::error::Error>> {
    let mut tally = Tally::default();
    for path in paths {
        let (folder, numbers) = MainnetFolder::open(path)?;
        for number in numbers {
            match check_mainnet(&folder, number, engine) {
                Ok(line) => {
                    tally.passed += 1;
                    println!("{line}");
                }
                Err(error) => {
                    tally.failed += 1;
                    println!("FAIL {} :: block {number}: {error}", path.display());
                }
            }
        }
    }
    Ok(tally)
}

/// Runs the command; `Ok(false)` when a case failed.
pub(crate) fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let (mainnet, tests): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| is_mainnet(p));
    let mainnet_tally = run_mainnet(&mainnet, args.engine.engine(args.threads))?;
    let files = if tests.is_empty() { Vec::new() } else { walk::json_files(&tests)? };
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} files {msg}",
    )?);
    let started = Instant::now();
    let total = Mutex::new(Tally::default());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    pool.install(|| {
        files.par_iter().for_each(|path| {
            let tally = run_file(path, &args, &progress);
            progress.inc(1);
            let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
            total.passed += tally.passed;
            total.failed += tally.failed;
            for (reason, count) in tally.skipped {
                *total.skipped.entry(reason).or_default() += count;
            }
            total.exceptions_matched += tally.exceptions_matched;
            total.exceptions_dropped_by_filler += tally.exceptions_dropped_by_filler;
            for (pair, count) in tally.exceptions_other {
                *total.exceptions_other.entry(pair).or_default() += count;
            }
        })
    });
    progress.finish_and_clear();
    let mut total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    total.passed += mainnet_tally.passed;
    total.failed += mainnet_tally.failed;
    if mainnet_tally.passed + mainnet_tally.failed > 0 {
        println!(
            "{} mainnet blocks as whole blocks (state root not checkable: partial pre-state)",
            mainnet_tally.passed + mainnet_tally.failed
        );
    }
    println!(
        "{} files, {} threads per block, {:.1} s",
        files.len(),
        args.threads,
        started.elapsed().as_secs_f64()
    );
    let other: usize = total.exceptions_other.values().sum();
    if total.exceptions_matched + total.exceptions_dropped_by_filler + other > 0 {
        println!(
            "invalid blocks: {} rejected by the rule the fixture names, {} by the transactions \
             root of a header that leaves out the invalid last transaction (as the fixture's \
             filler built it), {other} by another rule",
            total.exceptions_matched, total.exceptions_dropped_by_filler
        );
        for (pair, count) in &total.exceptions_other {
            println!("  {count}: {pair}");
        }
    }
    for (reason, count) in &total.skipped {
        println!("skipped {count}: {reason}");
    }
    let skipped: usize = total.skipped.values().sum();
    println!("{} passed, {} failed, {} skipped", total.passed, total.failed, skipped);
    Ok(total.failed == 0)
}
