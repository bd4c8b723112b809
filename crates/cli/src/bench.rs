//! `lanes bench`: parallel against sequential on built-in workloads and mainnet blocks, with
//! each block's ideal speedup, as a table, JSON and an SVG plot.

use crate::replay::EngineChoice;
use indicatif::{ProgressBar, ProgressStyle};
use lanes_bench::{
    measure_block, report,
    workloads::{self, GIGAGAS},
    Record, Settings,
};
use lanes_fixtures::mainnet::MainnetFolder;
use std::path::PathBuf;

/// Arguments of `lanes bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Mainnet fixture folders or `blocks/<number>` folders. With neither paths nor
    /// `--workload`, every built-in workload runs.
    paths: Vec<PathBuf>,
    /// Built-in workloads: raw-transfers, erc20, uniswap, hot-10, hot-30, hot-100, chain.
    #[arg(long = "workload", num_args = 1..)]
    workloads: Vec<String>,
    /// Thread counts of the parallel engine (default: 1, 2 and the number of cores).
    #[arg(long, num_args = 1..)]
    threads: Vec<usize>,
    /// Timed runs per engine after the warm-up; medians are reported.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Gas of each built-in workload block.
    #[arg(long, default_value_t = GIGAGAS)]
    gas: u64,
    /// Seed of the built-in workloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the records as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw speedup against ideal as SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Measure each engine's peak heap (one more run of each).
    #[arg(long)]
    memory: bool,
    /// `auto` measures the adaptive policy's choice per block (what a node runs); `parallel`
    /// always runs the parallel engine, to measure the engine itself.
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
    engine: EngineChoice,
}

enum Job {
    BuiltIn(workloads::BuiltIn),
    Block(PathBuf),
}

/// Runs the command; `Ok(false)` when a block failed.
pub(crate) fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        threads = vec![1, 2, cores];
    }
    threads.sort_unstable();
    threads.dedup();
    let settings = Settings {
        threads,
        samples: args.samples,
        memory: args.memory,
        subject: args.engine.subject(),
    };

    let mut jobs = Vec::new();
    for name in &args.workloads {
        let built_in = workloads::find(name).ok_or_else(|| {
            let known: Vec<_> = workloads::BUILT_INS.iter().map(|b| b.name).collect();
            format!("unknown workload {name:?}; known: {}", known.join(", "))
        })?;
        jobs.push(Job::BuiltIn(built_in));
    }
    jobs.extend(args.paths.iter().cloned().map(Job::Block));
    if jobs.is_empty() {
        jobs.extend(workloads::BUILT_INS.iter().copied().map(Job::BuiltIn));
    }

    let progress = ProgressBar::new(jobs.len() as u64);
    progress
        .set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")?);
    println!("{}", report::header());
    let mut records: Vec<Record> = Vec::new();
    let mut failed = 0usize;
    let mut show =
        |measured: Result<lanes_bench::Measured, String>, records: &mut Vec<Record>| match measured
        {
            Ok(measured) => {
                for record in &measured.records {
                    progress.suspend(|| println!("{}", report::row(record)));
                }
                records.extend(measured.records);
            }
            Err(reason) => {
                failed += 1;
                progress.suspend(|| println!("FAIL {reason}"));
            }
        };
    for job in jobs {
        match job {
            Job::BuiltIn(built_in) => {
                progress.set_message(built_in.name);
                let measured = built_in
                    .with_gas(args.gas, args.seed)
                    .map_err(|e| e.to_string())
                    .and_then(|w| {
                        measure_block(&w.name, &w.block, &w.state, &settings)
                            .map_err(|e| e.to_string())
                    });
                show(measured, &mut records);
            }
            Job::Block(path) => {
                progress.set_message(path.display().to_string());
                match MainnetFolder::open(&path) {
                    Err(error) => show(Err(error.to_string()), &mut records),
                    Ok((folder, numbers)) => {
                        progress.inc_length(numbers.len() as u64);
                        for number in numbers {
                            let measured =
                                folder.load(number).map_err(|e| e.to_string()).and_then(|b| {
                                    measure_block(
                                        &number.to_string(),
                                        &b.block,
                                        &b.state,
                                        &settings,
                                    )
                                    .map_err(|e| e.to_string())
                                });
                            show(measured, &mut records);
                            progress.inc(1);
                        }
                    }
                }
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    summarize(&records);
    if let Some(path) = &args.json {
        report::write_json(path, &records)?;
    }
    if let Some(path) = &args.plot {
        report::write_plot(path, &records)?;
    }
    println!("{} blocks measured, {} passed, {} failed", records.len(), records.len(), failed);
    Ok(failed == 0)
}

/// Prints the geometric mean speedup per thread count, over every block and over blocks with
/// at least 100 transactions, and the worst block.
fn summarize(records: &[Record]) {
    let mut threads: Vec<usize> = records.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    for t in threads {
        let at: Vec<&Record> = records.iter().filter(|r| r.threads == t).collect();
        let big: Vec<&Record> = at.iter().copied().filter(|r| r.txs >= 100).collect();
        // "G over N blocks", or "no blocks" (a geometric mean of nothing is not a number).
        let over = |rs: &[&Record], value: fn(&Record) -> f64| match rs.len() {
            0 => "no blocks".to_owned(),
            n => {
                let mean = (rs.iter().map(|r| value(r).ln()).sum::<f64>() / n as f64).exp();
                format!("{mean:.2}x over {n} blocks")
            }
        };
        let worst = at.iter().min_by(|a, b| a.speedup.total_cmp(&b.speedup));
        println!(
            "{t} threads: geomean {}, {} with >= 100 txs; worst {}",
            over(&at, |r| r.speedup),
            over(&big, |r| r.speedup),
            worst.map(|w| format!("{} {:.2}x", w.name, w.speedup)).unwrap_or_default()
        );
        if t > 1 {
            let mut trips: Vec<f64> = at.iter().filter_map(|r| r.round_trip_ns).collect();
            trips.sort_by(f64::total_cmp);
            if let (Some(low), Some(high)) = (trips.first(), trips.last()) {
                println!(
                    "{t} threads: core-to-core round trip {:.0} ns median over the blocks, {low:.0}-{high:.0} ns (what the workers pay to share a cache line; the machine's ceiling does not include it)",
                    trips[trips.len() / 2],
                );
            }
            println!(
                "{t} threads: the machine allows geomean {}, {} with >= 100 txs ({t} sequential copies side by side)",
                over(&at, |r| r.machine_ceiling),
                over(&big, |r| r.machine_ceiling),
            );
        }
    }
}
