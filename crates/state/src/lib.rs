//! State vocabulary shared by every Lanes crate.
//!
//! - [`StateSource`] ([`source`]): the read-only view of the state *before* a block that the
//!   executors read from. In memory today ([`InMemoryState`]); a database will implement it later.
//! - [`StateChanges`] ([`changes`]): what a block did to the state, in a deterministic order,
//!   identical for every engine that executed the block correctly.
//! - [`InMemoryState`] ([`memory`]): a complete state held in hash maps, able to apply
//!   [`StateChanges`] and to compute its Merkle-Patricia state root ([`root`]).

pub mod changes;
pub mod memory;
pub mod root;
pub mod source;

pub use changes::{AccountChange, AccountChanges, StateChanges};
pub use memory::{InMemoryState, MemoryAccount};
pub use source::{SourceError, StateSource};

pub use revm::bytecode::Bytecode;
pub use revm::state::AccountInfo;
