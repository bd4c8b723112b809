//! `lanes statetest`: every case of Ethereum state-test files through the parallel engine.
//!
//! A case passes when the transaction is rejected exactly when the fixture expects an
//! exception, and the post-state root and logs hash equal the fixture's.

use crate::replay::EngineChoice;
use crate::sample::Sampler;
use indicatif::{ProgressBar, ProgressStyle};
use lanes_executor::{execute, Engine};
use lanes_fixtures::{
    statetest::{self, StateTestCase},
    walk,
};
use rayon::prelude::*;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

/// Arguments of `lanes statetest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// State-test files or directories holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads of the engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The engine every case runs on: `parallel` (the default), `lanes` or `auto`.
    #[arg(long, value_enum, default_value_t = EngineChoice::Parallel)]
    engine: EngineChoice,
    /// Run only this fraction of the cases, picked by `--seed` (for example 0.2).
    #[arg(long, default_value_t = 1.0)]
    sample: f64,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Files run at the same time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: BTreeMap<String, usize>,
    unsampled: usize,
}

/// Checks one case; `Err` says why it failed.
fn check(case: &StateTestCase, engine: Engine) -> Result<(), String> {
    let expected = &case.expected;
    let block = match &case.block {
        Ok(block) => block,
        Err(reason) if expected.exception.is_some() => {
            // The transaction cannot even be formed: rejected, and nothing changes.
            let _ = reason;
            return Ok(());
        }
        Err(reason) => return Err(format!("cannot build the transaction: {reason}")),
    };
    let output =
        execute(engine, block, &*case.pre).map_err(|e| format!("execution failed: {e}"))?;
    let result = output.results.first().ok_or("the engine returned no result")?;
    let logs: &[alloy_primitives::Log] = match (&expected.exception, result) {
        (Some(_), Err(_)) => &[],
        (Some(exception), Ok(outcome)) => {
            return Err(format!(
                "expected exception {exception}, but the transaction was valid ({:?})",
                outcome.status
            ))
        }
        (None, Err(invalid)) => return Err(format!("unexpected rejection: {invalid}")),
        (None, Ok(outcome)) => &outcome.logs,
    };
    let logs_hash = statetest::logs_hash(logs);
    if logs_hash != expected.logs_hash {
        return Err(format!("logs hash {logs_hash} != expected {}", expected.logs_hash));
    }
    let mut post = (*case.pre).clone();
    post.apply(&output.changes);
    if case.zero_reward_touch {
        statetest::touch_coinbase(&mut post, block.context.header.beneficiary, block.context.spec);
    }
    let root = post.state_root();
    if root != expected.state_root {
        return Err(format!("state root {root} != expected {}", expected.state_root));
    }
    Ok(())
}

fn run_file(path: &Path, args: &Args, sampler: &Sampler, progress: &ProgressBar) -> Tally {
    let mut tally = Tally::default();
    let file = match statetest::load(path) {
        Ok(file) => file,
        Err(error) => {
            progress.suspend(|| println!("FAIL {error}"));
            tally.failed += 1;
            return tally;
        }
    };
    for skipped in &file.skipped {
        *tally.skipped.entry(skipped.reason.to_string()).or_default() += skipped.cases;
    }
    for case in &file.cases {
        let id = format!("{}::{}::{}::{}", path.display(), case.name, case.fork, case.index);
        if !sampler.keeps(&id) {
            tally.unsampled += 1;
            continue;
        }
        match check(case, args.engine.engine(args.threads)) {
            Ok(()) => tally.passed += 1,
            Err(reason) => {
                tally.failed += 1;
                progress.suspend(|| {
                    println!(
                        "FAIL {} :: {} [{} #{}]: {reason}",
                        path.display(),
                        case.name,
                        case.fork,
                        case.index
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
    let sampler = Sampler::new(args.sample, args.seed);
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} files {msg}",
    )?);
    let started = Instant::now();
    let total = Mutex::new(Tally::default());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    pool.install(|| {
        files.par_iter().for_each(|path| {
            let tally = run_file(path, &args, &sampler, &progress);
            progress.inc(1);
            let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
            total.passed += tally.passed;
            total.failed += tally.failed;
            total.unsampled += tally.unsampled;
            for (reason, count) in tally.skipped {
                *total.skipped.entry(reason).or_default() += count;
            }
        })
    });
    progress.finish_and_clear();
    let total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "{} files, {} threads per case, {:.1} s",
        files.len(),
        args.threads,
        started.elapsed().as_secs_f64()
    );
    if total.unsampled > 0 {
        println!(
            "sample {} (seed {}): {} cases left out by the sample",
            args.sample, args.seed, total.unsampled
        );
    }
    for (reason, count) in &total.skipped {
        println!("skipped {count}: {reason}");
    }
    let skipped: usize = total.skipped.values().sum();
    println!("{} passed, {} failed, {} skipped", total.passed, total.failed, skipped);
    Ok(total.failed == 0)
}
