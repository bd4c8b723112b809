//! Errors that stop a whole block (as opposed to [`crate::InvalidTx`], which rejects one
//! transaction and lets the block go on).

use lanes_state::SourceError;
use revm::context_interface::result::InvalidHeader;

/// A block could not be executed at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The state source failed while a transaction read from it.
    #[error("transaction {tx}: the state source failed: {source}")]
    State {
        /// Index of the transaction in the block.
        tx: usize,
        /// The source's error.
        source: SourceError,
    },
    /// The state source failed while the block's state changes were being built.
    #[error("the state source failed while building the state changes: {source}")]
    StateAfterBlock {
        /// The source's error.
        source: SourceError,
    },
    /// `BLOCKHASH` asked for a height the input did not provide.
    #[error("transaction {tx}: BLOCKHASH({number}) is not in the block's known hashes")]
    MissingBlockHash {
        /// Index of the transaction in the block.
        tx: usize,
        /// The height asked for.
        number: u64,
    },
    /// The block environment is inconsistent with the fork (for example no prevrandao after
    /// the Merge, no excess blob gas after Cancun).
    #[error("the block environment is invalid for its fork: {0}")]
    InvalidHeader(InvalidHeader),
    /// revm failed in a way that is not a property of the transaction (fatal precompile error).
    #[error("transaction {tx}: the EVM failed: {message}")]
    Evm {
        /// Index of the transaction in the block.
        tx: usize,
        /// revm's message.
        message: String,
    },
    /// A transaction's execution panicked inside the EVM.
    #[error("transaction {tx}: execution panicked: {message}")]
    Panic {
        /// Index of the transaction in the block.
        tx: usize,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// An invariant of the parallel engine broke; this is a bug in Lanes.
    #[error("parallel engine invariant broken: {0}")]
    Invariant(&'static str),
}
