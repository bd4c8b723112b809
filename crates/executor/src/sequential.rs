//! The sequential engine: plain revm, one transaction after the other. This is the oracle every
//! other engine is checked against, so it stays as close to revm's own usage as possible.

use crate::{
    block::{Block, BlockHashes},
    error::ExecutionError,
    evm::{
        cfg_env, changed_slots, classify_error, AccountEffect, BlockGas, DbError, Eip7610,
        StorageProbe,
    },
    fingerprint::fingerprint,
    outcome::{BlockOutput, BlockTrace, EngineKind, ExecutionStats, TxResult},
    panic_message, ExecuteOptions,
};
use alloy_primitives::{
    map::{Entry, HashMap},
    Address, B256, U256,
};
use lanes_state::{changes::AccountState, AccountChange, StateChanges, StateSource};
use revm::{
    bytecode::Bytecode,
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::result::{EVMError, InvalidTransaction},
    database_interface::{Database, DatabaseCommit},
    handler::{EthFrame, Handler, MainnetEvm, MainnetHandler},
    interpreter::interpreter::EthInterpreter,
    primitives::{AddressMap, KECCAK_EMPTY},
    state::{Account, AccountInfo},
    Context, ExecuteEvm, Journal, MainBuilder,
};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    time::{Duration, Instant},
};

/// Storage written during the block for one account.
#[derive(Debug, Default)]
pub(crate) struct StorageOverlay {
    /// The account's storage was wiped: unlisted slots read as zero.
    pub(crate) cleared: bool,
    /// Slots written (after the wipe, if any).
    pub(crate) slots: HashMap<U256, U256>,
}

/// An account the block has loaded or written.
#[derive(Debug)]
struct Loaded {
    /// Its value now: the value it was loaded with until a transaction writes it.
    now: Option<AccountInfo>,
    /// What is known of its value before the block.
    before: Before,
    /// A transaction wrote it.
    written: bool,
}

/// What the overlay knows of an account's value before the block, without a second lookup
/// in the source.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Nothing: finalisation looks it up.
    Unknown,
    /// The source does not have the account.
    Absent,
    /// The source has it: the fingerprint of its [`AccountState`], and whether it had code.
    /// A different fingerprint now proves the account changed; an equal one is confirmed
    /// with a lookup (a collision cannot make the changes wrong, only slower).
    Existing { fingerprint: u64, had_code: bool },
}

impl Before {
    fn existing(state: &AccountState) -> Self {
        Self::Existing {
            fingerprint: fingerprint_of(state),
            had_code: state.code_hash != KECCAK_EMPTY,
        }
    }
}

/// The fingerprint of an account's plain value.
fn fingerprint_of(state: &AccountState) -> u64 {
    fingerprint(
        0,
        &[
            &state.balance.to_le_bytes::<32>(),
            &state.nonce.to_le_bytes(),
            state.code_hash.as_slice(),
        ],
    )
}

/// A revm database: the block's writes so far over the read-only pre-state.
///
/// It keeps every account it loads from the source, with a fingerprint of the value it had
/// there ([`Before`]): the final comparison with the pre-block state then needs no second
/// lookup per account in most cases (a cold lookup in the source took ~450 ns per account of
/// a gigagas transfer block, a sixth of the block's time), as the parallel engine's
/// multi-version entries keep the pre-block value too. A fingerprint instead of the value
/// itself: 72 more bytes per entry of the overlay's table cost a block of transfers to new
/// accounts 7% in fresh memory.
#[derive(Debug)]
pub(crate) struct OverlayDb<'a, S: ?Sized> {
    source: &'a S,
    hashes: &'a BlockHashes,
    accounts: HashMap<Address, Loaded>,
    storage: HashMap<Address, StorageOverlay>,
    codes: HashMap<B256, Bytecode>,
    /// Transactions that wrote a storage slot an earlier transaction had written (the
    /// policy's probe reads it as a sign of one hot slot chaining the block).
    rewriting_txs: usize,
}

impl<S: StateSource + ?Sized> Database for OverlayDb<'_, S> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let entry = match self.accounts.entry(address) {
            Entry::Occupied(entry) => return Ok(entry.get().now.clone()),
            Entry::Vacant(entry) => entry,
        };
        let mut account = self.source.account(address).map_err(DbError::Source)?;
        if let Some(info) = account.as_mut() {
            if info.code.is_none() && info.code_hash != KECCAK_EMPTY {
                info.code = Some(self.source.code(info.code_hash).map_err(DbError::Source)?);
            }
        }
        // Kept when it exists: an account the source does not have needs no second lookup
        // (revm flags it as loaded as not existing, see `commit`), and inserting those on load
        // cost a block of transfers to new accounts 7%.
        if let Some(info) = &account {
            let before = Before::existing(&AccountState::from(info));
            entry.insert(Loaded { now: account.clone(), before, written: false });
        }
        Ok(account)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        match self.codes.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.source.code(code_hash).map_err(DbError::Source),
        }
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        if let Some(overlay) = self.storage.get(&address) {
            if let Some(value) = overlay.slots.get(&index) {
                return Ok(*value);
            }
            if overlay.cleared {
                return Ok(U256::ZERO);
            }
        }
        self.source.storage(address, index).map_err(DbError::Source)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.hashes.get(number).ok_or(DbError::MissingBlockHash(number))
    }
}

impl<S: StateSource + ?Sized> DatabaseCommit for OverlayDb<'_, S> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        // Whether this transaction wrote a slot an earlier one had written.
        let mut rewrote = false;
        for (address, account) in &changes {
            match AccountEffect::of(account) {
                None => {}
                Some(AccountEffect::Destroyed) => {
                    self.write(*address, account, None);
                    let storage = self.storage.entry(*address).or_default();
                    storage.cleared = true;
                    storage.slots.clear();
                }
                Some(AccountEffect::Created(info)) => {
                    self.remember_code(info);
                    self.write(*address, account, Some(info.clone()));
                    let storage = self.storage.entry(*address).or_default();
                    storage.cleared = true;
                    storage.slots = changed_slots(account).collect();
                }
                Some(AccountEffect::Changed(info)) => {
                    self.remember_code(info);
                    self.write(*address, account, Some(info.clone()));
                    // Only accounts whose slots changed get a storage entry: an empty entry
                    // for every account written (every sender) cost a hash insert per
                    // account and a removal at the end, a fifth of a block of transfers.
                    let mut slots = changed_slots(account).peekable();
                    if slots.peek().is_some() {
                        let overlay = self.storage.entry(*address).or_default();
                        for (slot, value) in slots {
                            rewrote |= overlay.slots.insert(slot, value).is_some();
                        }
                    }
                }
            }
        }
        self.rewriting_txs += usize::from(rewrote);
    }
}

impl<'a, S: StateSource + ?Sized> OverlayDb<'a, S> {
    /// An empty overlay on `source`, sized for about `accounts` written accounts.
    pub(crate) fn new(source: &'a S, hashes: &'a BlockHashes, accounts: usize) -> Self {
        Self {
            source,
            hashes,
            accounts: HashMap::with_capacity_and_hasher(accounts, Default::default()),
            storage: HashMap::default(),
            rewriting_txs: 0,
            codes: HashMap::default(),
        }
    }

    /// What the transactions wrote: each written account's value, and per account the storage
    /// written (and whether it was wiped first).
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_writes(
        self,
    ) -> (Vec<(Address, Option<AccountInfo>)>, HashMap<Address, StorageOverlay>) {
        let written = self
            .accounts
            .into_iter()
            .filter(|(_, account)| account.written)
            .map(|(address, account)| (address, account.now))
            .collect();
        (written, self.storage)
    }

    /// Transactions so far that wrote a storage slot an earlier one had written.
    pub(crate) fn rewriting_txs(&self) -> usize {
        self.rewriting_txs
    }

    /// Records what a transaction left in `address` (`account`, its journal entry).
    fn write(&mut self, address: Address, account: &Account, now: Option<AccountInfo>) {
        let entry = self.accounts.entry(address).or_insert_with(|| Loaded {
            now: None,
            // Not in the overlay and loaded as not existing: the source does not have it.
            before: if account.is_loaded_as_not_existing() {
                Before::Absent
            } else {
                Before::Unknown
            },
            written: false,
        });
        entry.now = now;
        entry.written = true;
    }

    fn remember_code(&mut self, info: &AccountInfo) {
        if let Some(code) = &info.code {
            if info.code_hash != KECCAK_EMPTY {
                self.codes.entry(info.code_hash).or_insert_with(|| code.clone());
            }
        }
    }

    /// The canonical state changes of everything committed so far: compared with the
    /// pre-state account by account, then sorted once. (Sorting in buckets of the leading
    /// address bits, each in the core's cache, cut the sort of a gigagas transfer block's
    /// 95,000 changes from 7.2 to 4.4 ms, but filling 256 buckets cost more than it saved.)
    fn into_changes(mut self) -> Result<StateChanges, ExecutionError> {
        let mut changes = Vec::with_capacity(self.accounts.len());
        for (address, account) in std::mem::take(&mut self.accounts) {
            if !account.written {
                continue;
            }
            let info = account.now;
            let storage = if self.storage.is_empty() {
                StorageOverlay::default()
            } else {
                self.storage.remove(&address).unwrap_or_default()
            };
            let code = info.as_ref().and_then(|i| i.code.clone()).filter(|c| !c.is_empty());
            let change = AccountChange {
                info: info.as_ref().map(AccountState::from),
                code,
                storage_cleared: storage.cleared,
                storage: storage.slots.into_iter().collect(),
            };
            let source = self.source;
            let canonical = match (account.before, change.info) {
                (Before::Absent, _) => change.canonical_against(None, source, address),
                // Gone, or different: changed. Its code stays only when it is new, and it is
                // when the account had none before (unless it has none now either: then
                // `code` is already `None`).
                (Before::Existing { fingerprint, had_code }, now)
                    if now.is_none_or(|now| fingerprint_of(&now) != fingerprint)
                        && !(had_code && change.code.is_some()) =>
                {
                    change.canonical_changed(source, address).map(Some)
                }
                _ => change.canonical(source, address),
            }
            .map_err(|source| ExecutionError::StateAfterBlock { source })?;
            changes.extend(canonical.map(|change| (address, change)));
        }
        changes.sort_unstable_by_key(|(address, _)| *address);
        Ok(StateChanges::from_sorted(changes))
    }
}

/// revm's mainnet handler over revm's mainnet EVM (with EIP-7610).
type SeqHandler<'a, S> = MainnetHandler<
    Eip7610<MainnetEvm<Context<&'a BlockEnv, &'a TxEnv, CfgEnv, OverlayDb<'a, S>>>>,
    EVMError<DbError, InvalidTransaction>,
    EthFrame<EthInterpreter>,
>;

impl<S: StateSource + ?Sized> StorageProbe for OverlayDb<'_, S> {
    fn has_storage(&mut self, address: Address) -> Result<bool, DbError> {
        if let Some(overlay) = self.storage.get(&address) {
            if overlay.slots.values().any(|v| !v.is_zero()) {
                return Ok(true);
            }
            if overlay.cleared {
                return Ok(false);
            }
        }
        self.source.has_storage(address).map_err(DbError::Source)
    }
}

/// Executes `block` on `source` with plain revm, one transaction after the other.
pub fn execute_sequential<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
) -> Result<BlockOutput, ExecutionError> {
    execute_sequential_with(block, source, ExecuteOptions::default())
}

/// [`execute_sequential`] with options (a per-transaction time trace).
pub fn execute_sequential_with<S: StateSource + ?Sized>(
    block: &Block,
    source: &S,
    options: ExecuteOptions,
) -> Result<BlockOutput, ExecutionError> {
    let mut tx_times = Vec::with_capacity(if options.trace { block.transactions.len() } else { 0 });
    let all = block.transactions.len();
    let prefix = Prefix::run(block, source, all, options.trace.then_some(&mut tx_times))?;
    let mut output = prefix.finish(block)?;
    output.trace = options.trace.then(|| BlockTrace { tx_times, dependencies: Vec::new() });
    Ok(output)
}

/// A block's first transactions, run on the sequential engine: the whole block for the
/// sequential engine, the adaptive policy's timed probe ([`crate::probe`]) otherwise, which
/// either finishes the block here or hands it to the parallel engine.
#[derive(Debug)]
pub(crate) struct Prefix<'a, S: ?Sized> {
    /// The state after the prefix.
    pub(crate) db: OverlayDb<'a, S>,
    /// One result per transaction of the prefix.
    pub(crate) results: Vec<TxResult>,
    /// Gas and blob gas the prefix used.
    pub(crate) gas: BlockGas,
    /// Executions (invalid transactions are not executed).
    pub(crate) executions: usize,
    /// How long the prefix took.
    pub(crate) time: Duration,
}

impl<'a, S: StateSource + ?Sized> Prefix<'a, S> {
    /// Runs the first `len` transactions of `block` on `source` (with their times when
    /// `tx_times` is given).
    pub(crate) fn run(
        block: &'a Block,
        source: &'a S,
        len: usize,
        tx_times: Option<&mut Vec<Duration>>,
    ) -> Result<Self, ExecutionError> {
        let mut results: Vec<TxResult> = Vec::with_capacity(block.transactions.len());
        let mut gas = BlockGas::default();
        let mut executions = 0;
        // Sized like the parallel engine's tables, so that neither engine rehashes as it goes.
        let db = OverlayDb::new(source, &block.context.block_hashes, block.expected_writes().0);
        let started = Instant::now();
        let db = execute_in_order(
            block,
            cfg_env(&block.context),
            0..len.min(block.transactions.len()),
            db,
            &mut InOrder {
                gas: &mut gas,
                results: &mut results,
                executions: &mut executions,
                tx_times,
            },
        )?;
        Ok(Self { db, results, gas, executions, time: started.elapsed() })
    }

    /// Runs the rest of the block on the sequential engine and builds its output.
    pub(crate) fn finish(self, block: &'a Block) -> Result<BlockOutput, ExecutionError> {
        let Self { db, mut results, mut gas, mut executions, time } = self;
        let started = Instant::now();
        let db = execute_in_order(
            block,
            cfg_env(&block.context),
            results.len()..block.transactions.len(),
            db,
            &mut InOrder {
                gas: &mut gas,
                results: &mut results,
                executions: &mut executions,
                tx_times: None,
            },
        )?;
        let mut stats = ExecutionStats::new(EngineKind::Sequential);
        stats.executions = executions;
        stats.execute_time = time + started.elapsed();
        let finalize = Instant::now();
        let changes = db.into_changes()?;
        stats.finalize_time = finalize.elapsed();
        Ok(BlockOutput {
            results,
            changes,
            gas_used: gas.gas_used,
            blob_gas_used: gas.blob_gas_used,
            stats,
            trace: None,
        })
    }
}

/// Where [`execute_in_order`] keeps the block's running totals.
pub(crate) struct InOrder<'r> {
    /// Gas and blob gas used by the transactions before.
    pub(crate) gas: &'r mut BlockGas,
    /// One result per transaction, in block order.
    pub(crate) results: &'r mut Vec<TxResult>,
    /// Executions (invalid transactions are not executed).
    pub(crate) executions: &'r mut usize,
    /// Per-transaction wall times, when tracing.
    pub(crate) tx_times: Option<&'r mut Vec<Duration>>,
}

/// Executes `block.transactions[range]` one after the other on `db` with plain revm, checking
/// each against what the block has left (`totals.gas`), and returns the database with their
/// writes. The sequential engine runs a whole block through it; the parallel engine runs the
/// windows its committer takes in order while conflicts are frequent.
pub(crate) fn execute_in_order<'a, S: StateSource + ?Sized>(
    block: &'a Block,
    cfg: CfgEnv,
    range: std::ops::Range<usize>,
    db: OverlayDb<'a, S>,
    totals: &mut InOrder<'_>,
) -> Result<OverlayDb<'a, S>, ExecutionError> {
    let Some(first) = block.transactions.get(range.start) else { return Ok(db) };
    let mut evm = Eip7610(
        Context::<BlockEnv, TxEnv, CfgEnv, _, Journal<_>, ()>::new(db, block.context.spec)
            .with_cfg(cfg)
            .with_block(&block.context.header)
            .with_tx(first)
            .build_mainnet(),
    );
    for (index, tx) in block.transactions[range.clone()].iter().enumerate() {
        let index = range.start + index;
        let started = totals.tx_times.is_some().then(Instant::now);
        let result = match totals.gas.check(&block.context, tx) {
            Err(invalid) => Err(invalid),
            Ok(()) => {
                *totals.executions += 1;
                evm.0.ctx.tx = tx;
                let outcome =
                    catch_unwind(AssertUnwindSafe(|| SeqHandler::default().run(&mut evm)))
                        .map_err(|payload| ExecutionError::Panic {
                            tx: index,
                            message: panic_message(&payload),
                        })?;
                let state = evm.0.finalize();
                match outcome {
                    Ok(result) => {
                        evm.0.ctx.journaled_state.database.commit(state);
                        Ok(totals.gas.add(tx, result))
                    }
                    Err(error) => Err(classify_error(index, error)?),
                }
            }
        };
        totals.results.push(result);
        if let (Some(times), Some(started)) = (totals.tx_times.as_deref_mut(), started) {
            times.push(started.elapsed());
        }
    }
    Ok(evm.0.ctx.journaled_state.database)
}
