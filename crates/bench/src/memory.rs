//! The harness' global allocator: mimalloc, counting peak heap use while a run is measured.
//!
//! Why mimalloc and not the system allocator: the parallel engine frees, on the worker that
//! commits a transaction, memory the worker that executed it allocated (read sets, outcomes).
//! glibc's malloc handles such cross-thread frees slowly: on a block where one worker ended up
//! committing while the other executed (mainnet 15274915), a commit cost 7 µs with it and 1 µs
//! with mimalloc, and the 38 mainnet blocks with >= 100 transactions ran 1.20x -> 1.31x faster
//! than sequential (interleaved A/B; the sequential times did not change). Sequential and
//! parallel runs share the allocator, so the comparison stays fair; an application embedding
//! Lanes should likewise use mimalloc or jemalloc.
//!
//! [`keep_freed_pages`] tells mimalloc to keep the pages a block freed for the next one
//! instead of handing them back to the kernel a second later: the kernel zeroes every page
//! it hands out again (2 MiB at a time with transparent huge pages), and that zeroing was 12%
//! of a one-worker `erc20` run of the parallel engine (whose tables are larger than the
//! sequential engine's) and 1.7% of the sequential run; 5,000-9,700 page faults per
//! `lanes bench --workload erc20 --threads 1 --samples 5` became 330.
//!
//! A binary that wants memory numbers installs [`CountingAllocator`] as its
//! `#[global_allocator]`. Counting is off except inside [`peak_during`], so the allocator
//! costs one relaxed load per allocation the rest of the time and never makes threads share a
//! written cache line. [`peak_during`] reports the highest number of live heap bytes above the
//! level at its start; without the allocator installed it reports `None`.

use mimalloc::MiMalloc;
use std::{
    alloc::{GlobalAlloc, Layout},
    sync::atomic::{AtomicBool, AtomicIsize, Ordering},
};

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// mimalloc, counting live and peak bytes while [`peak_during`] runs.
#[derive(Debug, Default)]
pub struct CountingAllocator;

fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrink(bytes: usize) {
    LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to mimalloc; the counters are plain
// atomics and never influence what is allocated.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc`, which our caller upholds.
        let pointer = unsafe { MiMalloc.alloc(layout) };
        if !pointer.is_null() && COUNTING.load(Ordering::Relaxed) {
            grow(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by this allocator with this `layout`.
        unsafe { MiMalloc.dealloc(pointer, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            shrink(layout.size());
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::realloc`, which our caller upholds.
        let moved = unsafe { MiMalloc.realloc(pointer, layout, new_size) };
        if !moved.is_null() && COUNTING.load(Ordering::Relaxed) {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                shrink(layout.size() - new_size);
            }
        }
        moved
    }
}

/// mimalloc's `mi_option_purge_delay`: the position of `purge_delay` in `mi_option_e` of the
/// mimalloc v3 header that `libmimalloc-sys` 0.1.49 builds (the Rust bindings name no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped for reuse instead of returning it to the kernel (mimalloc's
/// purge delay set to "never"). Resident memory then stays at the process' peak, which for a
/// process that executes block after block is what the next block needs anyway. Returns
/// whether mimalloc took the setting.
pub fn keep_freed_pages() -> bool {
    // SAFETY: setting an option is a plain store into mimalloc's option table; the value
    // is read on every purge decision and -1 is documented as "no purging at all".
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // SAFETY: reading an option is a plain load from the same table.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == -1 }
}

/// Runs `f` and returns its result with the peak live heap bytes above the level at the
/// start, or `None` when [`CountingAllocator`] is not the global allocator.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let probe = std::hint::black_box(vec![0u8; 64]);
    let installed = LIVE.load(Ordering::Relaxed) >= 64;
    drop(probe);
    let value = f();
    COUNTING.store(false, Ordering::SeqCst);
    let peak = PEAK.load(Ordering::Relaxed).max(0) as usize;
    (value, installed.then_some(peak))
}
