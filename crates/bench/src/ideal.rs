//! The ideal speedup of a block: how fast a perfect scheduler with `threads` workers could run
//! it, given each transaction's sequential time and the block's dependency graph.

use std::time::Duration;

/// The length of the longest dependency chain, weighted by transaction times.
///
/// `dependencies[j]` lists transactions below `j`; `times[j]` is `j`'s sequential time.
pub fn critical_path(times: &[Duration], dependencies: &[Vec<usize>]) -> Duration {
    let mut finish = vec![Duration::ZERO; times.len()];
    let mut longest = Duration::ZERO;
    for (j, time) in times.iter().enumerate() {
        let start = dependencies
            .get(j)
            .into_iter()
            .flatten()
            .filter(|&&i| i < j)
            .map(|&i| finish[i])
            .max()
            .unwrap_or_default();
        finish[j] = start + *time;
        longest = longest.max(finish[j]);
    }
    longest
}

/// `total / max(total / threads, critical path)`: the speedup no schedule can beat.
pub fn ideal_speedup(times: &[Duration], dependencies: &[Vec<usize>], threads: usize) -> f64 {
    let total: Duration = times.iter().sum();
    if total.is_zero() {
        return 1.0;
    }
    let bound = critical_path(times, dependencies).max(total / threads.max(1) as u32);
    total.as_secs_f64() / bound.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn independent_transactions_are_bounded_by_threads() {
        let times = vec![ms(1); 8];
        let none = vec![Vec::new(); 8];
        assert_eq!(critical_path(&times, &none), ms(1));
        assert!((ideal_speedup(&times, &none, 2) - 2.0).abs() < 1e-9);
        assert!((ideal_speedup(&times, &none, 16) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_chain_has_no_parallelism() {
        let times = vec![ms(1); 4];
        let chain: Vec<Vec<usize>> =
            (0..4).map(|j| if j == 0 { vec![] } else { vec![j - 1] }).collect();
        assert_eq!(critical_path(&times, &chain), ms(4));
        assert!((ideal_speedup(&times, &chain, 8) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_heaviest_chain_counts() {
        // 0 -> 2 (1 + 5), 1 -> 3 (2 + 1): the critical path is 6 of a total of 9.
        let times = vec![ms(1), ms(2), ms(5), ms(1)];
        let dependencies = vec![vec![], vec![], vec![0], vec![1]];
        assert_eq!(critical_path(&times, &dependencies), ms(6));
        assert!((ideal_speedup(&times, &dependencies, 4) - 1.5).abs() < 1e-9);
    }
}
