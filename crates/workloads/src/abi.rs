//! Just enough Solidity ABI encoding for the calls the workloads make, and decoding helpers
//! for tests.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};

/// The 4-byte selector of a function signature such as `transfer(address,uint256)`.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The first topic of an event signature such as `Transfer(address,address,uint256)`.
pub fn event_topic(signature: &str) -> B256 {
    keccak256(signature.as_bytes())
}

/// Calldata under construction: a selector followed by 32-byte words.
#[derive(Clone, Debug)]
pub struct Calldata(Vec<u8>);

impl Calldata {
    /// Calldata for the function `signature`, without arguments yet.
    pub fn new(signature: &str) -> Self {
        Self(selector(signature).to_vec())
    }

    /// Appends a static argument word.
    pub fn word(mut self, word: B256) -> Self {
        self.0.extend_from_slice(word.as_slice());
        self
    }

    /// Appends an `address` argument.
    pub fn address(self, address: Address) -> Self {
        self.word(address.into_word())
    }

    /// Appends a `uint256` argument.
    pub fn uint(self, value: U256) -> Self {
        self.word(B256::from(value))
    }

    /// The finished calldata.
    pub fn build(self) -> Bytes {
        self.0.into()
    }
}

/// The `index`-th 32-byte word of ABI-encoded `data` as an unsigned integer (zero past the end).
pub fn word_at(data: &[u8], index: usize) -> U256 {
    let start = index * 32;
    data.get(start..start + 32).map(U256::from_be_slice).unwrap_or_default()
}

/// The `index`-th 32-byte word of ABI-encoded `data` as an address (zero past the end).
pub fn address_at(data: &[u8], index: usize) -> Address {
    Address::from_word(B256::from(word_at(data, index)))
}
