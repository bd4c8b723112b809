//! What a benchmark run reports: one [`Record`] per block and thread count, printed as a
//! table, written as JSON, and drawn as an SVG of speedup against ideal.

use crate::measure::BenchError;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One block at one thread count.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// The workload name, or the block number.
    pub name: String,
    /// Transactions.
    pub txs: usize,
    /// Gas used.
    pub gas: u64,
    /// Threads given to the parallel engine.
    pub threads: usize,
    /// Median sequential time.
    pub sequential_ms: f64,
    /// Median parallel time.
    pub parallel_ms: f64,
    /// Median over interleaved rounds of sequential time / parallel time.
    pub speedup: f64,
    /// The best speedup any schedule could reach (see [`crate::ideal`]).
    pub ideal_speedup: f64,
    /// `speedup / ideal_speedup`.
    pub efficiency: f64,
    /// `threads` times how much slower `threads` copies of the sequential run go side by side
    /// than one alone (1.0 at one thread): the speedup this machine allows the block whatever
    /// the engine, since parallel workers share the same caches and memory bandwidth.
    pub machine_ceiling: f64,
    /// The machine's core-to-core round trip just before this block's rounds, in nanoseconds
    /// (see [`crate::cores`]; measured when a thread count above one runs): what the workers
    /// paid to share a cache line, which the ceiling does not include.
    pub round_trip_ns: Option<f64>,
    /// Executions timed back to back in each sample (more than one for a block that runs in
    /// under [`crate::measure::MIN_SAMPLE`]); the times are per execution.
    pub runs_per_sample: usize,
    /// Million gas per second, parallel.
    pub mgas_per_s: f64,
    /// Re-executions in the last timed parallel run.
    pub reexecutions: usize,
    /// Re-executions per transaction.
    pub reexecutions_per_tx: f64,
    /// Transactions held back until the one they were predicted to follow had executed (last
    /// timed parallel run).
    pub deferred: usize,
    /// Transactions the committer ran in order on the sequential engine while validation
    /// failures were frequent (last timed parallel run).
    pub in_order: usize,
    /// Heavy transactions the parallel engine started before the others (last timed run).
    pub hoisted: usize,
    /// Time spent executing transactions, summed over workers (last timed run).
    pub execute_ms: f64,
    /// Time spent validating read sets (last timed run).
    pub validate_ms: f64,
    /// Time spent holding the commit lock, summed over workers (last timed run).
    pub commit_ms: f64,
    /// Time workers had nothing to do, summed over workers (last timed run).
    pub idle_ms: f64,
    /// Time spent building the state changes after the last commit (last timed run).
    pub finalize_ms: f64,
    /// The engine that actually ran (what the adaptive policy chose).
    pub engine: String,
    /// Why the policy chose it, when it was not the plain parallel engine, or what its timed
    /// probe measured before the parallel engine took over.
    pub decision: Option<String>,
    /// Peak heap of a sequential run, in bytes (when measured).
    pub sequential_peak_bytes: Option<usize>,
    /// Peak heap of a parallel run, in bytes (when measured).
    pub parallel_peak_bytes: Option<usize>,
}

/// The table header.
pub fn header() -> String {
    format!(
        "{:<14} {:>6} {:>13} {:>3} {:>9} {:>9} {:>7} {:>7} {:>5} {:>7} {:>8} {:>7}  {}",
        "block",
        "txs",
        "gas",
        "thr",
        "seq ms",
        "par ms",
        "speedup",
        "ideal",
        "eff",
        "machine",
        "Mgas/s",
        "reex/tx",
        "engine"
    )
}

/// One table row.
pub fn row(record: &Record) -> String {
    let memory = match (record.sequential_peak_bytes, record.parallel_peak_bytes) {
        (Some(s), Some(p)) if s > 0 => format!("  mem {:.2}x", p as f64 / s as f64),
        _ => String::new(),
    };
    format!(
        "{:<14} {:>6} {:>13} {:>3} {:>9.2} {:>9.2} {:>6.2}x {:>6.2}x {:>4.0}% {:>6.2}x {:>8.0} {:>7.3}  {}{}{}{}{}",
        record.name,
        record.txs,
        record.gas,
        record.threads,
        record.sequential_ms,
        record.parallel_ms,
        record.speedup,
        record.ideal_speedup,
        record.efficiency * 100.0,
        record.machine_ceiling,
        record.mgas_per_s,
        record.reexecutions_per_tx,
        record.engine,
        match record.in_order {
            0 => String::new(),
            n => format!(" ({:.0}% in order)", 100.0 * n as f64 / record.txs.max(1) as f64),
        },
        match record.hoisted {
            0 => String::new(),
            n => format!(" ({n} started first)"),
        },
        record.decision.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
        memory,
    )
}

/// Writes the records as a JSON array.
pub fn write_json(path: &Path, records: &[Record]) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(records).map_err(|e| BenchError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text)
        .map_err(|e| BenchError::Output { path: path.display().to_string(), reason: e.to_string() })
}

/// Draws speedup per block (blocks sorted by gas) beside the ideal and what the machine allows,
/// one colour per thread count, as an SVG.
pub fn write_plot(path: &Path, records: &[Record]) -> Result<(), BenchError> {
    let error = |e: &dyn std::fmt::Display| BenchError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut names: Vec<(&str, u64)> = Vec::new();
    for record in records {
        if !names.iter().any(|(n, _)| *n == record.name) {
            names.push((&record.name, record.gas));
        }
    }
    names.sort_by_key(|(_, gas)| *gas);
    let mut threads: Vec<usize> = records.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let top = records
        .iter()
        .flat_map(|r| [r.speedup, r.ideal_speedup, r.machine_ceiling])
        .fold(1.0f64, f64::max)
        * 1.1;
    let width = (160 + 28 * names.len()).max(640) as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Lanes: parallel speedup over sequential revm, the block's ideal, what the machine allows",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(110)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..(names.len() as f64 - 0.5), 0f64..top)
        .map_err(|e| error(&e))?;
    let labels: Vec<String> = names.iter().map(|(n, _)| n.to_string()).collect();
    chart
        .configure_mesh()
        .x_labels(names.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 11).into_font().transform(FontTransform::Rotate90))
        .y_desc("speedup (sequential time / parallel time)")
        .draw()
        .map_err(|e| error(&e))?;
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.0), (names.len() as f64 - 0.5, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| error(&e))?
        .label("sequential (1.0x)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
    for (k, t) in threads.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let points = |value: fn(&Record) -> f64| {
            names
                .iter()
                .enumerate()
                .filter_map(|(i, (name, _))| {
                    records
                        .iter()
                        .find(|r| r.name == *name && r.threads == *t)
                        .map(|r| (i as f64, value(r)))
                })
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(
                points(|r| r.speedup).into_iter().map(|p| Circle::new(p, 4, color.filled())),
            )
            .map_err(|e| error(&e))?
            .label(format!("achieved, {t} threads"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        chart
            .draw_series(points(|r| r.ideal_speedup).into_iter().map(|(x, y)| {
                PathElement::new([(x - 0.35, y), (x + 0.35, y)], color.stroke_width(2))
            }))
            .map_err(|e| error(&e))?
            .label(format!("ideal, {t} threads"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        if *t > 1 {
            chart
                .draw_series(
                    points(|r| r.machine_ceiling)
                        .into_iter()
                        .map(|p| TriangleMarker::new(p, 5, color.stroke_width(1))),
                )
                .map_err(|e| error(&e))?
                .label(format!("machine allows, {t} threads ({t} sequential copies side by side)"))
                .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, color.stroke_width(1)));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}
