//! secp256k1 keys derived from a seed, and signed EIP-7702 authorizations.
//!
//! Senders of ordinary transactions need no key (the executor takes the recovered sender as
//! given); an EIP-7702 authority does, because revm recovers it from the signature.

use alloy_primitives::{keccak256, Address, U256};
use k256::ecdsa::SigningKey;
use lanes_executor::revm::context_interface::transaction::{Authorization, SignedAuthorization};

/// A secp256k1 key pair and its Ethereum address.
#[derive(Clone)]
pub struct Key {
    signing: SigningKey,
    address: Address,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Key {
    /// The key number `index` of `seed`: the secret is `keccak256` of a label, the seed and the
    /// index (hashed again in the negligible case that it is not a valid scalar).
    pub fn derive(seed: u64, index: u64) -> Self {
        let mut preimage = b"lanes-workloads/key".to_vec();
        preimage.extend_from_slice(&seed.to_be_bytes());
        preimage.extend_from_slice(&index.to_be_bytes());
        let mut secret = keccak256(&preimage);
        loop {
            if let Ok(signing) = SigningKey::from_slice(secret.as_slice()) {
                return Self::from_signing_key(signing);
            }
            secret = keccak256(secret);
        }
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let point = signing.verifying_key().to_encoded_point(false);
        let address = Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..]);
        Self { signing, address }
    }

    /// The address of the key.
    pub fn address(&self) -> Address {
        self.address
    }

    /// An EIP-7702 authorization, signed by this key, to delegate its account to `delegate`
    /// (the zero address revokes a delegation) when the account's nonce is `nonce`, on
    /// `chain_id` (zero: any chain).
    pub fn authorize(&self, chain_id: u64, delegate: Address, nonce: u64) -> SignedAuthorization {
        let authorization =
            Authorization { chain_id: U256::from(chain_id), address: delegate, nonce };
        let hash = authorization.signature_hash();
        let (signature, recovery) = self
            .signing
            .sign_prehash_recoverable(hash.as_slice())
            .expect("signing a 32-byte hash cannot fail");
        let (r, s) = signature.split_bytes();
        SignedAuthorization::new_unchecked(
            authorization,
            recovery.is_y_odd() as u8,
            U256::from_be_slice(&r),
            U256::from_be_slice(&s),
        )
    }
}
