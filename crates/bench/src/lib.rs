//! # Lanes benchmark harness
//!
//! Measures the parallel engine against the sequential one **on the same input, in the same
//! process**: one warm-up run of each engine, then `K` timed runs, and the median of each. Every
//! parallel result is checked equal to the sequential one before it is timed, so a fast wrong
//! answer can never be reported.
//!
//! Each number is explained against what the block allows: its **ideal speedup** at a thread
//! count is `total / max(total / threads, critical path)`, where `total` is the sum of the
//! transactions' sequential times and the critical path is the longest chain of the block's
//! dependency graph (each transaction depends on the earlier ones whose writes its final
//! execution read), weighted by those times. Efficiency is achieved / ideal.
//!
//! | concept | module |
//! |---|---|
//! | built-in synthetic workloads, sized to about a gigagas | [`workloads`] |
//! | timing runs, medians, the parallel == sequential check | [`measure`] |
//! | ideal speedup from the dependency graph | [`ideal`] |
//! | peak heap of a run | [`memory`] |
//! | the machine's core-to-core round trip, which the ceiling does not see | [`cores`] |
//! | table, JSON records, SVG plot | [`report`] |

pub mod cores;
pub mod ideal;
pub mod measure;
pub mod memory;
pub mod report;
pub mod workloads;

pub use measure::{measure_block, BenchError, Measured, Settings, Subject};
pub use report::Record;
