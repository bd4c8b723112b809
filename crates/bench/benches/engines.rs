//! Criterion benches of the engines on small versions of the built-in workloads, for
//! development (`cargo bench -p lanes-bench`). `lanes bench` is the harness that reports.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lanes_bench::workloads::BUILT_INS;
use lanes_executor::{execute, Engine};

/// The allocator `lanes bench` runs with (mimalloc, freed pages kept; see `lanes_bench::memory`
/// for why).
#[global_allocator]
static ALLOCATOR: lanes_bench::memory::CountingAllocator = lanes_bench::memory::CountingAllocator;

fn engines(c: &mut Criterion) {
    lanes_bench::memory::keep_freed_pages();
    let mut group = c.benchmark_group("engines");
    group.sample_size(10);
    for built_in in BUILT_INS {
        let workload = built_in.with_size(2_000, 1);
        for engine in
            [Engine::Sequential, Engine::Parallel { threads: 1 }, Engine::Parallel { threads: 2 }]
        {
            let id = BenchmarkId::new(built_in.name, format!("{engine:?}"));
            group.bench_with_input(id, &workload, |b, w| {
                b.iter(|| execute(engine, &w.block, &w.state).expect("executes"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
