//! 64-bit fingerprints: a fast, well-mixed hash of a few byte strings, for maps keyed by what
//! they name (the parallel engine's look at the block) and for telling a value from another
//! without keeping it (the sequential engine's pre-block accounts). Equal values always have
//! equal fingerprints; equal fingerprints only *probably* mean equal values, so a user must
//! either tolerate a collision (a wrong prediction) or confirm an equality the slow way.

use std::hash::Hasher;

/// Folds `bytes` into the fingerprint `state`, eight bytes at a time.
pub(crate) fn fold(mut state: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        // The added constant keeps zero words from leaving a zero state at zero.
        state =
            (state ^ u64::from_le_bytes(word)).wrapping_add(0x2d35_8dcc_aa6c_78a5).wrapping_mul(K);
        state ^= state >> 29;
    }
    state
}

/// The fingerprint of a key made of `parts`, in a `domain` of its own.
pub(crate) fn fingerprint(domain: u64, parts: &[&[u8]]) -> u64 {
    let state = parts.iter().fold(domain, |state, part| fold(state, part));
    // Finalise: every bit of the key reaches the top bits (hashbrown's control bytes) and the
    // bottom ones (the bucket).
    let state = (state ^ (state >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
    state ^ (state >> 32)
}

/// The hasher of maps keyed by fingerprints: a fingerprint is already a hash.
#[derive(Default)]
pub(crate) struct Fingerprinted(u64);

impl Hasher for Fingerprinted {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed (`write_u64`); anything else still hashes correctly.
        self.0 = fold(self.0, bytes);
    }

    fn write_u64(&mut self, fingerprint: u64) {
        self.0 = fingerprint;
    }
}
