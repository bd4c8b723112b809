//! A lock-free "was this location ever written?" filter in front of the multi-version memory.
//!
//! Most reads of a block hit locations that no transaction below the reader wrote: the token
//! contract every ERC-20 transfer loads, the balance slots of fresh pairs, the recipients of
//! plain transfers. Without the filter each of them takes a shard's read lock (an atomic
//! read-modify-write on a cache line the other cores also write) and probes a large, cold hash
//! table only to find nothing. The filter answers most of those reads with one plain load.
//!
//! It is a bitmap indexed by a hash of the location: [`WrittenFilter::mark`] sets the bit
//! *before* the write is inserted into its shard, and bits are never cleared (a retracted
//! write leaves its bit set). So a clear bit proves that no write of that location had been
//! published when the bit was loaded:
//! - a speculative read that sees a clear bit reads the pre-block value, exactly as if it had
//!   run a moment earlier; validation catches it if a lower transaction writes there later;
//! - validation runs when every transaction below the reader has published (their status
//!   store and the commit lock order the publishes before it), so there a clear bit is exact.
//!
//! A set bit only means "maybe": the reader takes the ordinary locked path.

use alloy_primitives::{Address, U256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per expected written location: about 6% false positives when the estimate holds.
const BITS_PER_LOCATION: usize = 16;
/// Fewest bits (512 bytes) and most bits (2^20: 128 KiB, about 9% false positives once a
/// gigagas block of plain transfers has written its ~95,000 accounts).
const MIN_BITS_LOG2: u32 = 12;
const MAX_BITS_LOG2: u32 = 20;

/// The bitmap of locations that may have been written.
#[derive(Debug)]
pub(crate) struct WrittenFilter {
    words: Box<[AtomicU64]>,
    /// log2 of the number of bits.
    bits_log2: u32,
}

/// Mixes a 64-bit value (a multiply-xorshift finaliser; the inputs are often small integers).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^ (x >> 32)
}

fn address_bits(address: &Address) -> u64 {
    let bytes = address.as_slice();
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    low.copy_from_slice(&bytes[12..20]);
    high.copy_from_slice(&bytes[4..12]);
    let top = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    u64::from_le_bytes(low) ^ mix(u64::from_le_bytes(high) ^ u64::from(top).rotate_left(17))
}

/// The filter key of an account.
pub(crate) fn account_key(address: &Address) -> u64 {
    mix(address_bits(address))
}

/// The filter key of a storage slot.
pub(crate) fn slot_key(address: &Address, slot: &U256) -> u64 {
    let limbs = slot.as_limbs();
    let slot_bits = limbs[0] ^ mix(limbs[1] ^ mix(limbs[2] ^ mix(limbs[3])));
    mix(address_bits(address).rotate_left(29) ^ mix(slot_bits ^ 0x9e37_79b9_7f4a_7c15))
}

impl WrittenFilter {
    /// A filter sized for about `locations` written locations: a block of ten transactions
    /// does not pay for (and fault in) the bitmap of a gigagas block.
    pub(crate) fn with_capacity(locations: usize) -> Self {
        let bits = locations.saturating_mul(BITS_PER_LOCATION).max(1);
        let bits_log2 =
            bits.next_power_of_two().trailing_zeros().clamp(MIN_BITS_LOG2, MAX_BITS_LOG2);
        Self {
            words: (0..1usize << (bits_log2 - 6)).map(|_| AtomicU64::new(0)).collect(),
            bits_log2,
        }
    }

    fn position(&self, key: u64) -> (usize, u64) {
        let bit = (key >> (64 - self.bits_log2)) as usize;
        (bit >> 6, 1 << (bit & 63))
    }

    /// Marks `key` as (maybe) written. Call before publishing the write.
    pub(crate) fn mark(&self, key: u64) {
        let (word, bit) = self.position(key);
        let word = &self.words[word];
        // Skip the read-modify-write (and taking the cache line exclusive) when already set.
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Release);
        }
    }

    /// Whether `key` may have been written; `false` proves it was not (see the module docs).
    pub(crate) fn may_contain(&self, key: u64) -> bool {
        let (word, bit) = self.position(key);
        self.words[word].load(Ordering::Acquire) & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_keys_are_reported_and_few_others_are() {
        let filter = WrittenFilter::with_capacity(usize::MAX);
        assert_eq!(filter.words.len() * 64, 1 << MAX_BITS_LOG2);
        let addresses: Vec<Address> =
            (0u64..50_000).map(|i| Address::left_padding_from(&i.to_be_bytes())).collect();
        for address in &addresses {
            filter.mark(account_key(address));
        }
        assert!(addresses.iter().all(|a| filter.may_contain(account_key(a))), "no false negative");
        let contract = Address::repeat_byte(0x11);
        for slot in 0u64..20_000 {
            filter.mark(slot_key(&contract, &U256::from(slot)));
        }
        assert!((0u64..20_000).all(|s| filter.may_contain(slot_key(&contract, &U256::from(s)))));
        // Keys never marked: sequential small addresses and slots, the worst case for a weak hash.
        let false_positives = (1_000_000u64..1_100_000)
            .filter(|i| {
                filter.may_contain(account_key(&Address::left_padding_from(&i.to_be_bytes())))
            })
            .count();
        // 70,000 of 2^20 bits set: about 6.5% expected.
        assert!(false_positives < 10_000, "{false_positives} false positives of 100,000");
    }

    #[test]
    fn small_blocks_get_small_filters_that_still_hold_their_writes() {
        assert_eq!(WrittenFilter::with_capacity(0).words.len() * 64, 1 << MIN_BITS_LOG2);
        let filter = WrittenFilter::with_capacity(1_000);
        assert_eq!(filter.words.len() * 64, 16_384, "16 bits per location, rounded up");
        let contract = Address::repeat_byte(0x22);
        for slot in 0u64..1_000 {
            filter.mark(slot_key(&contract, &U256::from(slot)));
        }
        assert!((0u64..1_000).all(|s| filter.may_contain(slot_key(&contract, &U256::from(s)))));
        let false_positives = (5_000u64..15_000)
            .filter(|s| filter.may_contain(slot_key(&contract, &U256::from(*s))))
            .count();
        assert!(false_positives < 1_500, "{false_positives} false positives of 10,000");
    }
}
