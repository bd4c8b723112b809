//! What a lane records while it runs, beside the values its overlay keeps: which of its
//! transactions first and last read, and first and last wrote, each account; which of them
//! first and last wrote each slot; which accounts it touched and which slots it read in the
//! current epoch (to be checked against the other lanes at the epoch's end); the beneficiary
//! fees it deferred; and an undo log that takes the overlay back to the state before any
//! transaction from a given index on.
//!
//! The marks of an account live in the overlay's own entry (no second lookup per read). A
//! slot read costs a push onto the epoch's list, not a lookup (an ERC-20 transfer reads two or
//! three); only written slots get marks, in a map of the log's.

use crate::{
    evm::DefersFee,
    parallel::filter::{account_key, slot_key},
    sequential::{OverlayDb, StorageOverlay, Tracking},
};
use alloy_primitives::{map::HashMap, Address, U256};
use lanes_state::StateSource;
use revm::state::AccountInfo;

/// No transaction.
pub(crate) const NONE: u32 = u32::MAX;

/// Who in one lane read and wrote one location (transaction indices in the block).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    /// The first transaction that read it (every write is preceded by a read in revm).
    pub(crate) first_read: u32,
    /// The last transaction that read it.
    pub(crate) last_read: u32,
    /// The first transaction that changed it, or [`NONE`].
    pub(crate) first_write: u32,
    /// The last transaction that changed it, or [`NONE`].
    pub(crate) last_write: u32,
}

impl Mark {
    fn read_by(tx: u32) -> Self {
        Self { first_read: tx, last_read: tx, first_write: NONE, last_write: NONE }
    }
}

/// A location of the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// An account's value (balance, nonce, code) and whether its storage was wiped.
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
}

impl Location {
    /// The key of the location in the written-location filters.
    fn key(&self) -> u64 {
        match self {
            Self::Account(address) => account_key(address),
            Self::Slot(address, slot) => slot_key(address, slot),
        }
    }
}

/// One write of the lane, with what it replaced.
#[derive(Debug)]
enum Undo {
    Account {
        tx: u32,
        address: Address,
        old: Option<AccountInfo>,
        was_written: bool,
        last_write: u32,
    },
    Slot {
        tx: u32,
        address: Address,
        slot: U256,
        old: Option<U256>,
        last_write: u32,
    },
    Storage {
        tx: u32,
        address: Address,
        old: Option<StorageOverlay>,
    },
}

impl Undo {
    fn tx(&self) -> u32 {
        match self {
            Self::Account { tx, .. } | Self::Slot { tx, .. } | Self::Storage { tx, .. } => *tx,
        }
    }
}

/// A bitmap of the locations a lane wrote: a clear bit proves the lane never wrote there.
#[derive(Debug)]
pub(crate) struct WrittenBits {
    words: Vec<u64>,
    mask: u64,
}

impl WrittenBits {
    /// A bitmap of about 16 bits per location for `locations` locations.
    fn with_capacity(locations: usize) -> Self {
        let bits = (16 * locations.max(1)).next_power_of_two().clamp(1 << 12, 1 << 22);
        Self { words: vec![0; bits / 64], mask: bits as u64 - 1 }
    }

    fn set(&mut self, key: u64) {
        let bit = key & self.mask;
        self.words[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    /// Whether the lane may have written the location of `key`.
    pub(crate) fn may_contain(&self, key: u64) -> bool {
        let bit = key & self.mask;
        self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

/// What one lane records ([`Tracking`] of its overlay).
#[derive(Debug)]
pub(crate) struct LaneLog {
    /// The transaction running.
    pub(crate) tx: u32,
    /// The first transaction of the current epoch.
    epoch_start: u32,
    /// The marks of the slots the lane wrote.
    pub(crate) slots: HashMap<(Address, U256), Mark>,
    /// Accounts read in the current epoch, each once.
    pub(crate) touched: Vec<Address>,
    /// Slots read in the current epoch, and by which transaction (every read).
    pub(crate) slot_reads: Vec<(Address, U256, u32)>,
    /// Locations the lane wrote.
    pub(crate) written: WrittenBits,
    /// Its writes in the current epoch, in order.
    undo: Vec<Undo>,
    /// Accounts whose storage a transaction of the epoch wiped, and when (first time).
    pub(crate) wipes: Vec<(Address, u32)>,
    /// Accounts a transaction of the epoch asked whether they have storage (EIP-7610), when,
    /// and whether the lane held storage of the account then.
    pub(crate) probes: Vec<(Address, u32, bool)>,
    /// The fee the running transaction deferred (set by the lane's handler).
    pub(crate) fee: Option<U256>,
    /// An account whose balance the lane assumed (a split round's sender): `BALANCE` of it
    /// sets `balance_read`. While it is set, every `BALANCE` is listed in `balance_reads`.
    pub(crate) watch: Option<Address>,
    /// The running transaction read the balance of `watch`.
    pub(crate) balance_read: bool,
    /// Accounts whose balance a transaction read with `BALANCE`, and which (while `watch` is
    /// set; a split round's later lanes run one epoch).
    pub(crate) balance_reads: Vec<(Address, u32)>,
    /// Whether the lane defers fees (not the first lane of a split round, which runs from the
    /// true state: it pays the beneficiary as revm does).
    pub(crate) defer_fees: bool,
    /// Keep the undo log of earlier epochs: the block's gas check, made after the round, may
    /// still cut in them (not when every transaction's gas limit fits in the block together).
    pub(crate) keep_undo: bool,
    /// Record the undo log at all: not in a lane no cut can reach (the first lane of a split
    /// round, when no gas check can cut it: `split.rs`).
    pub(crate) record_undo: bool,
}

impl LaneLog {
    /// An empty log, sized for about `accounts` written accounts and `slots` slots.
    pub(crate) fn new(accounts: usize, slots: usize) -> Self {
        Self {
            tx: 0,
            epoch_start: 0,
            // The glance at the block counts two slots per call; many calls write one.
            slots: HashMap::with_capacity_and_hasher(slots / 2, Default::default()),
            touched: Vec::new(),
            slot_reads: Vec::new(),
            written: WrittenBits::with_capacity(accounts + slots),
            // Cleared every epoch: grown to one epoch's writes, then reused.
            undo: Vec::new(),
            wipes: Vec::new(),
            probes: Vec::new(),
            fee: None,
            defer_fees: true,
            watch: None,
            balance_read: false,
            balance_reads: Vec::new(),
            keep_undo: false,
            record_undo: true,
        }
    }

    /// Makes room in the undo log for `writes` more writes (a split lane's whole segment is one
    /// epoch: growing the log by doubling copied it and faulted in fresh pages as it ran).
    pub(crate) fn reserve_undo(&mut self, writes: usize) {
        if self.record_undo {
            self.undo.reserve(writes);
        }
    }

    /// A new epoch starts at transaction `start`: the lists of what it touches start empty,
    /// and so does the undo log (unless `keep_undo`). An epoch only starts when every earlier
    /// one passed its check, so no conflict cuts before `start` (a conflict found later has its
    /// stale read in the later epoch: one in an earlier epoch would have been found there), and
    /// the log holds at most one epoch's writes.
    pub(crate) fn start_epoch(&mut self, start: usize) {
        self.epoch_start = start as u32;
        self.touched.clear();
        self.slot_reads.clear();
        if !self.keep_undo {
            self.undo.clear();
        }
        self.wipes.clear();
        self.probes.clear();
    }
}

/// Records that the running transaction `tx` wrote `location`; returns the previous last
/// writer.
fn wrote(written: &mut WrittenBits, tx: u32, location: Location, mark: &mut Mark) -> u32 {
    if mark.first_write == NONE {
        mark.first_write = tx;
        written.set(location.key());
    }
    std::mem::replace(&mut mark.last_write, tx)
}

impl<S: StateSource + ?Sized> DefersFee for LaneDb<'_, S> {
    fn defer_fee(&mut self, fee: U256) {
        self.track.fee = Some(fee);
    }

    fn defers_fees(&self) -> bool {
        self.track.defer_fees
    }
}

impl Tracking for LaneLog {
    type Mark = Mark;
    const ON: bool = true;

    fn begin(&mut self, tx: usize) {
        self.tx = tx as u32;
        self.fee = None;
        self.balance_read = false;
    }

    fn first_read(&mut self, address: &Address) -> Mark {
        self.touched.push(*address);
        Mark::read_by(self.tx)
    }

    fn read(&mut self, address: &Address, mark: &mut Mark) {
        if mark.last_read < self.epoch_start {
            self.touched.push(*address);
        }
        mark.last_read = self.tx;
    }

    fn account_written(
        &mut self,
        address: Address,
        mark: &mut Mark,
        old: Option<AccountInfo>,
        was_written: bool,
    ) {
        let last_write = wrote(&mut self.written, self.tx, Location::Account(address), mark);
        if self.record_undo {
            self.undo.push(Undo::Account { tx: self.tx, address, old, was_written, last_write });
        }
    }

    fn storage_wiped(&mut self, address: Address, old: Option<StorageOverlay>) {
        if !self.wipes.iter().any(|(wiped, _)| *wiped == address) {
            self.wipes.push((address, self.tx));
        }
        if self.record_undo {
            self.undo.push(Undo::Storage { tx: self.tx, address, old });
        }
    }

    fn slot_read(&mut self, address: Address, slot: U256) {
        self.slot_reads.push((address, slot, self.tx));
    }

    fn slot_written(&mut self, address: Address, slot: U256, old: Option<U256>) {
        let tx = self.tx;
        let mark = self.slots.entry((address, slot)).or_insert_with(|| Mark::read_by(tx));
        let last_write = wrote(&mut self.written, tx, Location::Slot(address, slot), mark);
        if self.record_undo {
            self.undo.push(Undo::Slot { tx, address, slot, old, last_write });
        }
    }

    fn storage_probed(&mut self, address: Address, held: bool) {
        self.probes.push((address, self.tx, held));
    }
}

/// A lane's overlay.
pub(crate) type LaneDb<'a, S> = OverlayDb<'a, S, LaneLog>;

/// The mark of `location` in the lane of `db`.
pub(crate) fn mark_of<S: StateSource + ?Sized>(
    db: &LaneDb<'_, S>,
    location: &Location,
) -> Option<Mark> {
    match location {
        Location::Account(address) => db.accounts.get(address).map(|loaded| loaded.mark),
        Location::Slot(address, slot) => db.track.slots.get(&(*address, *slot)).copied(),
    }
}

/// Whether the lane of `db` may have written `location` (its filter; a `true` is confirmed
/// by the mark).
pub(crate) fn may_have_written<S: StateSource + ?Sized>(
    db: &LaneDb<'_, S>,
    location: &Location,
) -> bool {
    db.track.written.may_contain(location.key())
}

/// Takes the overlay of a lane back to the state before transaction `cut`: every write of a
/// transaction at `cut` or later is undone, newest first.
pub(crate) fn roll_back<S: StateSource + ?Sized>(db: &mut LaneDb<'_, S>, cut: usize) {
    let cut = cut as u32;
    while db.track.undo.last().is_some_and(|undo| undo.tx() >= cut) {
        let Some(undo) = db.track.undo.pop() else { break };
        match undo {
            Undo::Account { address, old, was_written, last_write, .. } => {
                if let Some(loaded) = db.accounts.get_mut(&address) {
                    loaded.now = old;
                    loaded.written = was_written;
                    loaded.mark.last_write = last_write;
                }
            }
            Undo::Slot { address, slot, old, last_write, .. } => {
                if let Some(overlay) = db.storage.get_mut(&address) {
                    match old {
                        Some(value) => {
                            overlay.slots.insert(slot, value);
                        }
                        None => {
                            overlay.slots.remove(&slot);
                        }
                    }
                }
                if let Some(mark) = db.track.slots.get_mut(&(address, slot)) {
                    mark.last_write = last_write;
                }
            }
            Undo::Storage { address, old, .. } => match old {
                Some(old) => {
                    db.storage.insert(address, old);
                }
                None => {
                    db.storage.remove(&address);
                }
            },
        }
    }
}
