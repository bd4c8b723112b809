//! Solidity storage layout: where mappings and packed values live.

use alloy_primitives::{keccak256, Address, B256, U256};

/// The slot of `mapping[key]` for a mapping declared at `slot`:
/// `keccak256(pad32(key) . pad32(slot))`.
pub fn mapping_slot(key: B256, slot: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(key.as_slice());
    preimage[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// The slot of `mapping[address]` for a mapping declared at `slot`.
pub fn address_mapping_slot(key: Address, slot: U256) -> U256 {
    mapping_slot(key.into_word(), slot)
}

/// The slot of `mapping[outer][inner]` for a nested mapping declared at `slot`.
pub fn nested_mapping_slot(outer: Address, inner: Address, slot: U256) -> U256 {
    address_mapping_slot(inner, address_mapping_slot(outer, slot))
}

/// The slot of element `index` of a dynamic array declared at `slot` (its length lives at
/// `slot`, its elements from `keccak256(pad32(slot))` on).
pub fn array_element_slot(slot: U256, index: u64) -> U256 {
    U256::from_be_bytes(keccak256(slot.to_be_bytes::<32>()).0) + U256::from(index)
}

/// The storage word of a `string` of at most 31 bytes: the bytes left-aligned and the length
/// times two in the lowest byte.
pub fn short_string(value: &str) -> U256 {
    let bytes = value.as_bytes();
    assert!(bytes.len() < 32, "{value:?} is too long for a short string");
    let mut word = [0u8; 32];
    word[..bytes.len()].copy_from_slice(bytes);
    word[31] = (bytes.len() * 2) as u8;
    U256::from_be_bytes(word)
}

/// An address as a storage word (right-aligned).
pub fn address_word(address: Address) -> U256 {
    U256::from_be_bytes(address.into_word().0)
}
