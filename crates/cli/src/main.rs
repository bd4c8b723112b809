//! `lanes`: the Lanes command line.
//!
//! - `lanes statetest <PATH>...`: run Ethereum state tests through the parallel engine.
//! - `lanes blocktest <PATH>...`: import the blocks of Ethereum blockchain tests, the
//!   transactions through the parallel engine, and check hashes, head and post-state.
//! - `lanes replay <PATH>...`: replay mainnet blocks sequentially and in parallel, check them
//!   against their headers and against each other, and print the speedups.
//! - `lanes bench [PATH...]`: benchmark parallel against sequential with ideal speedups.

mod bench;
mod blocktest;
mod exceptions;
mod replay;
mod sample;
mod statetest;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc (see `lanes_bench::memory` for why; `main` keeps its freed pages), counting heap bytes while `lanes bench
/// --memory` measures a run.
#[global_allocator]
static ALLOCATOR: lanes_bench::memory::CountingAllocator = lanes_bench::memory::CountingAllocator;

/// Lanes: a parallel EVM execution layer.
#[derive(Debug, Parser)]
#[command(name = "lanes", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run state-test JSON files (directories are walked) through the parallel engine.
    Statetest(statetest::Args),
    /// Import blockchain-test JSON files (directories are walked) block by block.
    Blocktest(blocktest::Args),
    /// Replay mainnet block folders sequentially and in parallel and compare.
    Replay(replay::Args),
    /// Benchmark parallel against sequential on built-in workloads and mainnet blocks.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Each block's memory is reused by the next instead of being zeroed again by the kernel.
    if !lanes_bench::memory::keep_freed_pages() {
        tracing::warn!("mimalloc did not take the purge delay: freed pages go back to the kernel");
    }
    let cli = Cli::parse();
    let ok = match cli.command {
        Command::Statetest(args) => statetest::run(args),
        Command::Blocktest(args) => blocktest::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
