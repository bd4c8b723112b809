//! Deterministic sampling of test cases: the same seed picks the same cases on every machine.

use alloy_primitives::keccak256;

/// Picks a fixed, seeded subset of cases by their identity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sampler {
    fraction: f64,
    seed: u64,
}

impl Sampler {
    /// Keeps about `fraction` of the cases (1.0 keeps all).
    pub(crate) fn new(fraction: f64, seed: u64) -> Self {
        Self { fraction: fraction.clamp(0.0, 1.0), seed }
    }

    /// Whether the case named `id` is in the sample.
    pub(crate) fn keeps(&self, id: &str) -> bool {
        if self.fraction >= 1.0 {
            return true;
        }
        let mut bytes = self.seed.to_be_bytes().to_vec();
        bytes.extend_from_slice(id.as_bytes());
        let hash = keccak256(&bytes);
        let draw =
            u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        draw < self.fraction
    }
}
