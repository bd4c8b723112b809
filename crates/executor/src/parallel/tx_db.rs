//! The database one transaction incarnation executes against: reads go to the multi-version
//! memory (and through it to the pre-block state) and are recorded for validation.

use super::{
    mv_memory::{Location, MvMemory, PreBlock, SlotVersion, TxIdx},
    scheduler::Outcome,
    Shared,
};
use crate::evm::{DbError, DefersFee, StorageProbe};
use alloy_primitives::{Address, B256, U256};
use lanes_state::StateSource;
use revm::{bytecode::Bytecode, database_interface::Database, state::AccountInfo};

/// What a transaction saw of an account: enough to tell whether its execution would change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccountView {
    pub(crate) balance: U256,
    pub(crate) nonce: u64,
    pub(crate) code_hash: B256,
}

impl AccountView {
    fn of(info: &Option<AccountInfo>) -> Option<Self> {
        info.as_ref().map(|i| Self { balance: i.balance, nonce: i.nonce, code_hash: i.code_hash })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.balance.is_zero()
            && self.nonce == 0
            && self.code_hash == revm::primitives::KECCAK_EMPTY
    }
}

/// One recorded read.
#[derive(Clone, Debug)]
pub(crate) enum Read {
    /// An account read. Unless `balance_observed`, only existence, nonce, code and whether the
    /// balance is zero mattered to the execution. `from_base`: nothing below wrote it then.
    Account { address: Address, seen: Option<AccountView>, balance_observed: bool, from_base: bool },
    /// A storage slot read. `from_base`: nothing below wrote or wiped it then.
    Storage { address: Address, slot: U256, value: U256, from_base: bool },
    /// Whether the account had storage (the EIP-7610 collision check).
    HasStorage { address: Address, value: bool },
}

/// Whether two views of an account are the same for an execution that saw `old`.
fn same_view(old: &Option<AccountView>, new: &Option<AccountView>, balance_observed: bool) -> bool {
    match (old, new) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.nonce == b.nonce
                && a.code_hash == b.code_hash
                && a.balance.is_zero() == b.balance.is_zero()
                && (!balance_observed || a.balance == b.balance)
        }
        _ => false,
    }
}

/// The pre-block value of an account, with its code filled in.
pub(crate) fn base_account<S: StateSource + ?Sized>(
    source: &S,
    address: Address,
) -> Result<Option<AccountInfo>, DbError> {
    let mut account = source.account(address).map_err(DbError::Source)?;
    if let Some(info) = account.as_mut() {
        if info.code.is_none() && info.code_hash != revm::primitives::KECCAK_EMPTY {
            info.code = Some(source.code(info.code_hash).map_err(DbError::Source)?);
        }
    }
    Ok(account)
}

/// Reads `address` as transaction `tx` sees it; the flag says the value is the pre-block one.
pub(crate) fn read_account<S: StateSource + ?Sized>(
    mv: &MvMemory,
    source: &S,
    address: Address,
    tx: TxIdx,
) -> Result<(Option<AccountInfo>, bool), DbError> {
    mv.read_account(address, tx, || base_account(source, address))
}

/// Reads a slot as transaction `tx` sees it; the flag says the value is the pre-block one.
pub(crate) fn read_slot<S: StateSource + ?Sized>(
    mv: &MvMemory,
    source: &S,
    address: Address,
    slot: U256,
    tx: TxIdx,
) -> Result<(U256, bool), DbError> {
    match mv.read_slot(address, slot, tx) {
        SlotVersion::Written(value) => Ok((value, false)),
        SlotVersion::Base => Ok((source.storage(address, slot).map_err(DbError::Source)?, true)),
    }
}

/// Whether `address` has storage as transaction `tx` sees it.
///
/// Asked only for accounts without code and nonce (EIP-7610), which cannot change their own
/// storage: only the pre-block storage and later wipes matter.
fn has_storage<S: StateSource + ?Sized>(
    mv: &MvMemory,
    source: &S,
    address: Address,
    tx: TxIdx,
) -> Result<bool, DbError> {
    Ok(!mv.wiped_below(address, tx) && source.has_storage(address).map_err(DbError::Source)?)
}

/// The earlier transactions whose writes `reads` (of transaction `tx`) saw, sorted.
pub(crate) fn dependencies(mv: &MvMemory, tx: TxIdx, reads: &[Read]) -> Vec<TxIdx> {
    let mut out = Vec::new();
    for read in reads {
        match read {
            Read::Account { address, balance_observed, .. } => {
                mv.account_writers(*address, tx, *balance_observed, &mut out)
            }
            Read::Storage { address, slot, .. } => {
                out.extend(mv.slot_writer(*address, Some(*slot), tx))
            }
            Read::HasStorage { address, .. } => out.extend(mv.slot_writer(*address, None, tx)),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether every read of `reads` still returns what transaction `tx` saw.
pub(crate) fn validate<S: StateSource + ?Sized>(
    mv: &MvMemory,
    source: &S,
    tx: TxIdx,
    reads: &[Read],
) -> Result<bool, DbError> {
    for read in reads {
        let same = match read {
            // A pre-block value still holds if nothing below wrote the location since.
            Read::Account { address, from_base: true, .. }
                if !mv.account_written_below(*address, tx) =>
            {
                true
            }
            Read::Storage { address, slot, from_base: true, .. }
                if matches!(mv.read_slot(*address, *slot, tx), SlotVersion::Base) =>
            {
                true
            }
            Read::Account { address, seen, balance_observed, .. } => {
                let (now, _) = read_account(mv, source, *address, tx)?;
                same_view(seen, &AccountView::of(&now), *balance_observed)
            }
            Read::Storage { address, slot, value, .. } => {
                read_slot(mv, source, *address, *slot, tx)?.0 == *value
            }
            Read::HasStorage { address, value } => has_storage(mv, source, *address, tx)? == *value,
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The revm database of one worker. Between transactions it is reset with [`TxDb::begin`].
#[derive(Debug)]
pub(crate) struct TxDb<'a, S: ?Sized> {
    pub(crate) shared: &'a Shared<'a, S>,
    pub(crate) tx: TxIdx,
    /// Reads in the order they happened.
    pub(crate) reads: Vec<Read>,
    /// Accounts whose balance the execution looked at (BALANCE, SELFBALANCE, value sent).
    pub(crate) observed: Vec<Address>,
    /// The fee owed to the beneficiary when the transaction never loaded it.
    pub(crate) deferred_fee: Option<U256>,
    /// Emptied read buffers of committed transactions, reused instead of allocating new
    /// ones (the scheduler fills it).
    pub(crate) spare_reads: Vec<Vec<Read>>,
    /// The same for the buffers of written locations...
    pub(crate) spare_written: Vec<Vec<Location>>,
    /// ...of credited accounts...
    pub(crate) spare_credited: Vec<Vec<Address>>,
    /// ...and the boxes of committed outcomes.
    #[allow(clippy::vec_box, reason = "the boxes themselves are reused: they go to the slots")]
    pub(crate) spare_outcomes: Vec<Box<Outcome>>,
}

impl<S: StateSource + ?Sized> DefersFee for TxDb<'_, S> {
    fn defer_fee(&mut self, fee: U256) {
        self.deferred_fee = Some(fee);
    }
}

impl<'a, S: StateSource + ?Sized> TxDb<'a, S> {
    pub(crate) fn new(shared: &'a Shared<'a, S>) -> Self {
        Self {
            shared,
            tx: 0,
            reads: Vec::new(),
            observed: Vec::new(),
            deferred_fee: None,
            spare_reads: Vec::new(),
            spare_written: Vec::new(),
            spare_credited: Vec::new(),
            spare_outcomes: Vec::new(),
        }
    }

    /// Prepares for executing transaction `tx`.
    pub(crate) fn begin(&mut self, tx: TxIdx) {
        self.tx = tx;
        self.reads.clear();
        self.observed.clear();
        self.deferred_fee = None;
    }

    /// Records that the execution looked at the balance of `address`.
    pub(crate) fn observe_balance(&mut self, address: Address) {
        self.observed.push(address);
    }

    /// What the execution saw of `address`, if it read it.
    pub(crate) fn seen(&self, address: &Address) -> Option<&Option<AccountView>> {
        self.reads.iter().find_map(|r| match r {
            Read::Account { address: a, seen, .. } if a == address => Some(seen),
            _ => None,
        })
    }

    /// The pre-block value of `address` when this execution read it before anything below
    /// wrote it and it has no code (a view holds all of such an account; one with code would
    /// need its code fetched).
    pub(crate) fn pre_block_value(&self, address: &Address) -> Option<PreBlock> {
        self.reads.iter().find_map(|read| match read {
            Read::Account { address: a, seen, from_base: true, .. } if a == address => match seen {
                None => Some(PreBlock::Missing),
                Some(view) if view.code_hash == revm::primitives::KECCAK_EMPTY => {
                    Some(PreBlock::Plain { balance: view.balance, nonce: view.nonce })
                }
                Some(_) => None,
            },
            _ => None,
        })
    }

    /// Marks the account reads whose balance was observed; called when execution ends.
    pub(crate) fn seal_reads(&mut self) {
        if self.observed.is_empty() {
            return;
        }
        for read in &mut self.reads {
            if let Read::Account { address, balance_observed, .. } = read {
                if self.observed.contains(address) {
                    *balance_observed = true;
                }
            }
        }
    }
}

impl<S: StateSource + ?Sized> Database for TxDb<'_, S> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let (value, from_base) =
            read_account(&self.shared.mv, self.shared.source, address, self.tx)?;
        self.reads.push(Read::Account {
            address,
            seen: AccountView::of(&value),
            balance_observed: false,
            from_base,
        });
        Ok(value)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        // Accounts always come with their code (see `base_account` and the writes), so revm
        // only asks for code here in corner cases; code is immutable per hash.
        self.shared.source.code(code_hash).map_err(DbError::Source)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        let (value, from_base) =
            read_slot(&self.shared.mv, self.shared.source, address, index, self.tx)?;
        self.reads.push(Read::Storage { address, slot: index, value, from_base });
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.shared.block.context.block_hashes.get(number).ok_or(DbError::MissingBlockHash(number))
    }
}

impl<S: StateSource + ?Sized> StorageProbe for TxDb<'_, S> {
    fn has_storage(&mut self, address: Address) -> Result<bool, DbError> {
        let value = has_storage(&self.shared.mv, self.shared.source, address, self.tx)?;
        self.reads.push(Read::HasStorage { address, value });
        Ok(value)
    }
}
