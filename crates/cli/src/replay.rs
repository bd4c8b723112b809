//! `lanes replay`: mainnet blocks, sequentially and in parallel, checked against their headers
//! and against each other, with the speedup of each.

use alloy_primitives::B256;
use lanes_executor::{execute_with, BlockOutput, Engine, EngineKind, ExecuteOptions};
use lanes_fixtures::{
    mainnet::{MainnetBlock, MainnetFolder},
    receipts,
};
use revm::primitives::hardfork::SpecId;
use std::{num::NonZeroUsize, path::PathBuf, time::Instant};

/// Arguments of `lanes replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Mainnet fixture folders, or `blocks/<number>` folders inside one.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads of the parallel engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed rounds per block (after one warm-up of each engine), each running both engines
    /// in alternating order; the medians are reported.
    #[arg(long, default_value_t = 7)]
    samples: usize,
    /// `parallel` always runs the parallel engine (the exactness check); `auto` lets the
    /// adaptive policy choose per block (what a node would run).
    #[arg(long, value_enum, default_value_t = EngineChoice::Parallel)]
    engine: EngineChoice,
    /// An exactness check of the parallel engine's in-order windows: after every K
    /// transactions committed speculatively, run the next K in order on the sequential engine
    /// (the throttle otherwise does so only when conflicts are frequent).
    #[arg(long, value_name = "K")]
    in_order_every: Option<NonZeroUsize>,
}

/// Which engine `lanes replay` and `lanes bench` compare with the sequential one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EngineChoice {
    /// The parallel engine, on every block.
    Parallel,
    /// The adaptive policy's choice.
    Auto,
    /// The lanes engine, on every block.
    Lanes,
}

impl EngineChoice {
    /// The engine with at most `threads` workers.
    pub(crate) fn engine(self, threads: usize) -> Engine {
        match self {
            Self::Parallel => Engine::Parallel { threads },
            Self::Auto => Engine::Auto { threads },
            Self::Lanes => Engine::Lanes { threads },
        }
    }

    /// What `lanes bench` measures for this choice.
    pub(crate) fn subject(self) -> lanes_bench::Subject {
        match self {
            Self::Parallel => lanes_bench::Subject::Parallel,
            Self::Auto => lanes_bench::Subject::Auto,
            Self::Lanes => lanes_bench::Subject::Lanes,
        }
    }
}

/// Runs `engine` on `block` once and returns the output with the time in milliseconds.
fn timed_run(
    engine: Engine,
    block: &MainnetBlock,
    options: ExecuteOptions,
) -> Result<(BlockOutput, f64), String> {
    let started = Instant::now();
    let output =
        execute_with(engine, &block.block, &block.state, options).map_err(|e| e.to_string())?;
    Ok((output, started.elapsed().as_secs_f64() * 1e3))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// After one untimed run of each engine (their outputs are returned), `samples` rounds of one
/// timed run of each, in alternating order (whatever runs second finds warmer caches); every
/// run must repeat the first output. Returns the outputs, the median times in milliseconds and
/// the median of the rounds' speedups.
fn measure(
    engine: Engine,
    block: &MainnetBlock,
    samples: usize,
    options: ExecuteOptions,
) -> Result<(BlockOutput, BlockOutput, f64, f64, f64), String> {
    let (sequential, _) = timed_run(Engine::Sequential, block, options)?;
    let (parallel, _) = timed_run(engine, block, options)?;
    let (mut seq_times, mut par_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..samples.max(1) {
        let order = if round % 2 == 0 {
            [Engine::Sequential, engine]
        } else {
            [engine, Engine::Sequential]
        };
        let mut times = [0.0; 2];
        for (slot, which) in order.into_iter().enumerate() {
            let (again, ms) = timed_run(which, block, options)?;
            let first = if which == Engine::Sequential { &sequential } else { &parallel };
            if !again.same_result(first) {
                return Err("two runs of the same engine differ".into());
            }
            times[slot] = ms;
        }
        let (seq_ms, par_ms) =
            if round % 2 == 0 { (times[0], times[1]) } else { (times[1], times[0]) };
        seq_times.push(seq_ms);
        par_times.push(par_ms);
        ratios.push(if par_ms > 0.0 { seq_ms / par_ms } else { 1.0 });
    }
    Ok((sequential, parallel, median(seq_times), median(par_times), median(ratios)))
}

/// Checks the sequential output against the header; `Err` names the first difference.
fn check_header(block: &MainnetBlock, output: &BlockOutput) -> Result<(), String> {
    let header = &block.rpc.header;
    let mut outcomes = Vec::with_capacity(output.results.len());
    for (i, result) in output.results.iter().enumerate() {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(invalid) => return Err(format!("transaction {i} rejected: {invalid}")),
        }
    }
    if output.gas_used != header.gas_used {
        return Err(format!("gas used {} != header {}", output.gas_used, header.gas_used));
    }
    let bloom = receipts::logs_bloom(outcomes.iter().copied());
    if bloom != header.logs_bloom {
        return Err("logs bloom differs from the header".into());
    }
    if block.block.context.spec.is_enabled_in(SpecId::BYZANTIUM) {
        let root: B256 =
            receipts::receipts_root(block.tx_types.iter().copied().zip(outcomes.iter().copied()));
        if root != header.receipts_root {
            return Err(format!("receipts root {root} != header {}", header.receipts_root));
        }
    }
    Ok(())
}

struct Row {
    speedup: f64,
    txs: usize,
}

/// Replays one block; prints its line and returns its speedup, or the reason it failed.
fn replay_block(block: &MainnetBlock, args: &Args) -> Result<Row, String> {
    let engine = args.engine.engine(args.threads);
    let options = ExecuteOptions { in_order_every: args.in_order_every, ..Default::default() };
    let (sequential, parallel, seq_ms, par_ms, speedup) =
        measure(engine, block, args.samples, options)?;
    check_header(block, &sequential)?;
    if let Some(difference) = parallel.first_difference(&sequential) {
        return Err(format!("parallel differs from sequential: {difference}"));
    }
    let chosen = match (parallel.stats.engine, parallel.stats.fallback) {
        (_, Some(reason)) => format!("  sequential: {reason}"),
        (EngineKind::Parallel { threads }, None) if args.engine == EngineChoice::Auto => {
            match parallel.stats.probe {
                Some(probe) => format!("  parallel/{threads}, probed: {probe}"),
                None => format!("  parallel/{threads}"),
            }
        }
        _ => String::new(),
    };
    let in_order = match parallel.stats.in_order {
        0 => String::new(),
        n => format!("  ({n} in order)"),
    };
    let hoisted = match parallel.stats.hoisted {
        0 => String::new(),
        n => format!("  ({n} started first)"),
    };
    println!(
        "{:>9} {:<17} {:>5} {:>11} {:>9.2} {:>9.2} {:>7.2}x {:>6}  ok{chosen}{in_order}{hoisted}",
        block.number,
        block.fork,
        block.block.transactions.len(),
        sequential.gas_used,
        seq_ms,
        par_ms,
        speedup,
        parallel.stats.reexecutions,
    );
    Ok(Row { speedup, txs: block.block.transactions.len() })
}

/// Runs the command; `Ok(false)` when a block failed.
pub(crate) fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    println!(
        "{:>9} {:<17} {:>5} {:>11} {:>9} {:>9} {:>8} {:>6}  verdict",
        "block", "fork", "txs", "gas", "seq ms", "par ms", "speedup", "reexec"
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failed = 0usize;
    for path in &args.paths {
        let (folder, numbers) = match MainnetFolder::open(path) {
            Ok(opened) => opened,
            Err(error) => {
                println!("FAIL {error}");
                failed += 1;
                continue;
            }
        };
        for number in numbers {
            let outcome = folder
                .load(number)
                .map_err(|e| e.to_string())
                .and_then(|block| replay_block(&block, &args));
            match outcome {
                Ok(row) => rows.push(row),
                Err(reason) => {
                    println!("{number:>9} FAIL: {reason}");
                    failed += 1;
                }
            }
        }
    }
    let geomean = |rows: &[&Row]| {
        if rows.is_empty() {
            return f64::NAN;
        }
        (rows.iter().map(|r| r.speedup.ln()).sum::<f64>() / rows.len() as f64).exp()
    };
    let all: Vec<&Row> = rows.iter().collect();
    let big: Vec<&Row> = rows.iter().filter(|r| r.txs >= 100).collect();
    let worst = rows.iter().map(|r| r.speedup).fold(f64::INFINITY, f64::min);
    println!(
        "{} blocks, {} passed, {} failed; {} threads, {:?} engine; speedup geomean {:.2}x (blocks with >= 100 txs: {:.2}x over {}), worst {:.2}x; {:.1} s",
        rows.len() + failed,
        rows.len(),
        failed,
        args.threads,
        args.engine,
        geomean(&all),
        geomean(&big),
        big.len(),
        worst,
        started.elapsed().as_secs_f64()
    );
    Ok(failed == 0)
}
