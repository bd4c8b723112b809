//! Importing a block: from its RLP to a committed post-state, or a typed rejection that
//! changes nothing.
//!
//! The steps of [`Chain::import_rlp`], in order:
//! 1. decode the RLP into a header and a body (`alloy-consensus`), find the parent;
//! 2. header rules against the parent ([`crate::header`]);
//! 3. body rules: transactions root, ommers hash and ommer rules, withdrawals root, block
//!    size (EIP-7934), each sender recovered, blob gas used;
//! 4. on an [`Overlay`] of the parent's state: the DAO fork's change, the pre-block system
//!    calls (EIP-2935, EIP-4788), the transactions through the parallel engine (before
//!    Byzantium one at a time, for the receipts' intermediate state roots), rewards,
//!    withdrawals, EIP-6110 deposits and the EIP-7002/EIP-7251 request calls;
//! 5. gas used, receipts root, logs bloom and requests hash against the header;
//! 6. the overlay becomes canonical state changes, applied to a copy of the parent's state
//!    whose root must equal the header's;
//! 7. only then is the block stored, and becomes the head if it is heavier (before the merge)
//!    or simply newer (after).

use crate::{
    chainspec::ChainSpec,
    error::{BlockError, ImportError},
    header::{validate_header, HeaderFork},
    overlay::Overlay,
    post_block, system_calls,
};
use alloy_consensus::{
    proofs::{
        calculate_ommers_root, calculate_receipt_root, calculate_transaction_root,
        calculate_withdrawals_root,
    },
    transaction::SignerRecoverable,
    Block as ConsensusBlock, BlockBody, Eip658Value, Header, Receipt, ReceiptEnvelope,
    ReceiptWithBloom, Transaction, TxEip4844Variant, TxEnvelope, TxType,
};
use alloy_eips::{
    eip4844::DATA_GAS_PER_BLOB, eip6110::DEPOSIT_REQUEST_TYPE, eip7002::WITHDRAWAL_REQUEST_TYPE,
    eip7251::CONSOLIDATION_REQUEST_TYPE, eip7685::Requests,
};
use alloy_evm::FromRecoveredTx;
use alloy_hardforks::EthereumHardfork;
use alloy_primitives::{map::HashMap, Address, Bloom, Bytes, B256, U256};
use alloy_rlp::Decodable;
use lanes_executor::{
    block_env, execute, BlobParams as ExecBlobParams, Block, BlockContext, BlockHashes, Engine,
    MissingBlockHash, TxOutcome,
};
use lanes_state::{InMemoryState, StateChanges, StateSource};
use revm::context::TxEnv;
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

/// Largest RLP-encoded block from Osaka on (EIP-7934: 10 MiB less a 2 MiB margin).
pub const MAX_RLP_BLOCK_SIZE: usize = 10 * 1024 * 1024 - 2 * 1024 * 1024;
/// How many generations back an ommer may be.
pub const MAX_OMMER_DEPTH: u64 = 6;
/// How many ancestors `BLOCKHASH` can see.
const BLOCKHASH_WINDOW: u64 = 256;

/// A block the chain holds, with the state after it.
#[derive(Debug)]
pub struct StoredBlock {
    /// Its header.
    pub header: Header,
    /// Total difficulty up to and including it.
    pub total_difficulty: U256,
    /// The state after it.
    pub state: Arc<InMemoryState>,
    /// The hashes of its ommers.
    pub ommers: Vec<B256>,
}

/// What importing a valid block produced.
#[derive(Debug)]
pub struct Imported {
    /// The block's hash.
    pub hash: B256,
    /// Its number.
    pub number: u64,
    /// Transactions executed.
    pub transactions: usize,
    /// Whether it became the head.
    pub head: bool,
}

/// A chain of imported blocks and their states, side chains included.
#[derive(Debug)]
pub struct Chain {
    spec: ChainSpec,
    engine: Engine,
    blocks: HashMap<B256, StoredBlock>,
    head: B256,
}

/// The receipt of a transaction of type `tx_type`: EIP-658 status from Byzantium on, the
/// intermediate state root before.
fn receipt(tx_type: TxType, status: Eip658Value, outcome: &TxOutcome) -> ReceiptEnvelope {
    let receipt = Receipt {
        status,
        cumulative_gas_used: outcome.cumulative_gas_used,
        logs: outcome.logs.clone(),
    };
    let with_bloom = ReceiptWithBloom::from(receipt);
    match tx_type {
        TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
        TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
        TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
        TxType::Eip4844 => ReceiptEnvelope::Eip4844(with_bloom),
        TxType::Eip7702 => ReceiptEnvelope::Eip7702(with_bloom),
    }
}

impl Chain {
    /// A chain whose genesis is `genesis` with state `state`; blocks execute with `engine`.
    ///
    /// Fails when the state's root is not the genesis header's.
    pub fn new(
        spec: ChainSpec,
        genesis: Header,
        state: InMemoryState,
        engine: Engine,
    ) -> Result<Self, ImportError> {
        let hash = genesis.hash_slow();
        let root = state.state_root();
        if root != genesis.state_root {
            return Err(ImportError {
                number: genesis.number,
                hash,
                rule: Box::new(BlockError::root("stateRoot", genesis.state_root, root)),
            });
        }
        let mut blocks = HashMap::default();
        blocks.insert(
            hash,
            StoredBlock {
                total_difficulty: genesis.difficulty,
                header: genesis,
                state: Arc::new(state),
                ommers: Vec::new(),
            },
        );
        Ok(Self { spec, engine, blocks, head: hash })
    }

    /// A chain whose genesis block is given as RLP (a fixture's `genesisRLP`).
    pub fn from_genesis_rlp(
        spec: ChainSpec,
        rlp: &[u8],
        state: InMemoryState,
        engine: Engine,
    ) -> Result<Self, ImportError> {
        let mut buf = rlp;
        let block = ConsensusBlock::<TxEnvelope>::decode(&mut buf).map_err(|e| ImportError {
            number: 0,
            hash: B256::ZERO,
            rule: Box::new(BlockError::Rlp(e)),
        })?;
        Self::new(spec, block.header, state, engine)
    }

    /// The head: the hash and the stored block.
    pub fn head(&self) -> (B256, &StoredBlock) {
        (self.head, &self.blocks[&self.head])
    }

    /// The block with `hash`, if imported.
    pub fn block(&self, hash: &B256) -> Option<&StoredBlock> {
        self.blocks.get(hash)
    }

    /// The chain specification.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// Decodes and imports a block from its RLP. A rejected block changes nothing.
    pub fn import_rlp(&mut self, rlp: &[u8]) -> Result<Imported, ImportError> {
        let mut buf = rlp;
        let block = ConsensusBlock::<TxEnvelope>::decode(&mut buf).map_err(|e| ImportError {
            number: 0,
            hash: B256::ZERO,
            rule: Box::new(BlockError::Rlp(e)),
        })?;
        let hash = block.header.hash_slow();
        let number = block.header.number;
        let wrap = |rule| ImportError { number, hash, rule: Box::new(rule) };
        if !buf.is_empty() {
            return Err(wrap(BlockError::TrailingBytes(buf.len())));
        }
        self.import(block, hash, rlp.len()).map_err(wrap)
    }

    fn ancestors(&self, from: B256, count: u64) -> impl Iterator<Item = (B256, &StoredBlock)> {
        let mut next = Some(from);
        std::iter::from_fn(move || {
            let hash = next?;
            let block = self.blocks.get(&hash)?;
            next = (block.header.number > 0).then_some(block.header.parent_hash);
            Some((hash, block))
        })
        .take(count as usize)
    }

    fn check_ommers(
        &self,
        header: &Header,
        hash: B256,
        ommers: &[Header],
    ) -> Result<(), BlockError> {
        if ommers.len() > 2 {
            return Err(BlockError::Ommer { index: 2, reason: "more than two ommers" });
        }
        let recent: Vec<(B256, &StoredBlock)> =
            self.ancestors(header.parent_hash, MAX_OMMER_DEPTH + 1).collect();
        let mut seen = Vec::with_capacity(ommers.len());
        for (index, ommer) in ommers.iter().enumerate() {
            let fail = |reason| Err(BlockError::Ommer { index, reason });
            let age = header.number.checked_sub(ommer.number);
            if !age.is_some_and(|age| (1..=MAX_OMMER_DEPTH).contains(&age)) {
                return fail("not 1 to 6 generations older than the block");
            }
            let ommer_hash = ommer.hash_slow();
            if ommer_hash == hash || recent.iter().any(|(h, _)| *h == ommer_hash) {
                return fail("is an ancestor of the block");
            }
            if recent.iter().any(|(_, b)| b.ommers.contains(&ommer_hash)) {
                return fail("already included by an ancestor");
            }
            if seen.contains(&ommer_hash) {
                return fail("included twice");
            }
            seen.push(ommer_hash);
            let Some(parent) = recent.iter().find(|(h, _)| *h == ommer.parent_hash) else {
                return fail("its parent is not a recent ancestor of the block");
            };
            if ommer.parent_hash == header.parent_hash {
                return fail("is a sibling of the block");
            }
            let parent = parent.1;
            let at = HeaderFork::of(&self.spec, ommer, parent.total_difficulty);
            validate_header(&self.spec, ommer, &parent.header, at)
                .map_err(|e| BlockError::OmmerHeader { index, source: Box::new(e) })?;
        }
        Ok(())
    }

    fn import(
        &mut self,
        block: ConsensusBlock<TxEnvelope>,
        hash: B256,
        size: usize,
    ) -> Result<Imported, BlockError> {
        if self.blocks.contains_key(&hash) {
            return Err(BlockError::AlreadyKnown);
        }
        let header = &block.header;
        let parent = self
            .blocks
            .get(&header.parent_hash)
            .ok_or(BlockError::UnknownParent(header.parent_hash))?;
        let at = HeaderFork::of(&self.spec, header, parent.total_difficulty);
        validate_header(&self.spec, header, &parent.header, at)?;
        check_body(header, &block.body, at, size)?;
        if !at.merged {
            self.check_ommers(header, hash, &block.body.ommers)?;
        }
        let mut known = BTreeMap::new();
        for (h, b) in self.ancestors(header.parent_hash, BLOCKHASH_WINDOW) {
            known.insert(b.header.number, h);
        }
        let parent_state = Arc::clone(&parent.state);
        let parent_td = parent.total_difficulty;
        let executed = execute_block(
            &self.spec,
            self.engine,
            &block,
            at,
            &parent_state,
            known,
            Receipts::Exact,
        )?;
        executed.check(header, true)?;

        // The state root.
        let mut post = (*parent_state).clone();
        post.apply(&executed.changes);
        let root = post.state_root();
        if root != header.state_root {
            return Err(BlockError::root("stateRoot", header.state_root, root));
        }

        // Commit.
        let total_difficulty = parent_td.saturating_add(header.difficulty);
        let head_td = self.blocks.get(&self.head).map_or(U256::ZERO, |b| b.total_difficulty);
        let becomes_head = at.merged || total_difficulty > head_td;
        let number = header.number;
        let count = executed.outcomes.len();
        let ommers = block.body.ommers.iter().map(Header::hash_slow).collect();
        self.blocks.insert(
            hash,
            StoredBlock { header: block.header, total_difficulty, state: Arc::new(post), ommers },
        );
        if becomes_head {
            self.head = hash;
        }
        Ok(Imported { hash, number, transactions: count, head: becomes_head })
    }
}

/// The body rules that need no state: block size (EIP-7934), transactions root, ommers hash,
/// withdrawals present exactly from Shanghai on and their root.
pub fn check_body(
    header: &Header,
    body: &BlockBody<TxEnvelope>,
    at: HeaderFork,
    size: usize,
) -> Result<(), BlockError> {
    if at.has(EthereumHardfork::Osaka) && size > MAX_RLP_BLOCK_SIZE {
        return Err(BlockError::BlockTooLarge { size, max: MAX_RLP_BLOCK_SIZE });
    }
    let transactions_root = calculate_transaction_root(&body.transactions);
    if transactions_root != header.transactions_root {
        return Err(BlockError::root(
            "transactionsRoot",
            header.transactions_root,
            transactions_root,
        ));
    }
    let ommers_hash = calculate_ommers_root(&body.ommers);
    if ommers_hash != header.ommers_hash {
        return Err(BlockError::root("ommersHash", header.ommers_hash, ommers_hash));
    }
    let shanghai = at.has(EthereumHardfork::Shanghai);
    match (&body.withdrawals, header.withdrawals_root) {
        (Some(withdrawals), Some(root)) if shanghai => {
            let computed = calculate_withdrawals_root(withdrawals);
            if computed != root {
                return Err(BlockError::root("withdrawalsRoot", root, computed));
            }
        }
        (None, None) if !shanghai => {}
        (withdrawals, _) => return Err(BlockError::Withdrawals { present: withdrawals.is_some() }),
    }
    Ok(())
}

/// What receipts record before Byzantium, where each holds the state root after its
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipts {
    /// Exact receipts: before Byzantium the transactions run one at a time and each receipt
    /// holds the true intermediate root (needs the complete pre-state).
    Exact,
    /// The whole block runs at once; receipts before Byzantium hold a zero root (for partial
    /// pre-states, where no intermediate root can be right).
    StatusOnly,
}

/// What executing a block produced, before anything is compared with its header.
#[derive(Debug)]
pub struct Executed {
    /// Per transaction, its outcome.
    pub outcomes: Vec<TxOutcome>,
    /// Gas used by the transactions.
    pub gas_used: u64,
    /// The bloom of every log.
    pub logs_bloom: Bloom,
    /// The receipts root.
    pub receipts_root: B256,
    /// The EIP-7685 requests hash (Prague on).
    pub requests_hash: Option<B256>,
    /// Every state change of the block (system calls, transactions, rewards, withdrawals),
    /// canonical against the pre-block state.
    pub changes: StateChanges,
    /// Time spent in the engine on the transactions.
    pub execute_time: Duration,
    /// Time spent recovering senders.
    pub senders_time: Duration,
    /// Time spent on everything else (system calls, receipts, rewards, requests, the
    /// canonical changes).
    pub other_time: Duration,
}

impl Executed {
    /// Compares gas used, logs bloom, receipts root (when `receipts`) and requests hash with
    /// `header`.
    pub fn check(&self, header: &Header, receipts: bool) -> Result<(), BlockError> {
        if self.gas_used != header.gas_used {
            return Err(BlockError::GasUsed { got: header.gas_used, expected: self.gas_used });
        }
        if self.logs_bloom != header.logs_bloom {
            return Err(BlockError::LogsBloom {
                got: Box::new(header.logs_bloom),
                expected: Box::new(self.logs_bloom),
            });
        }
        if receipts && self.receipts_root != header.receipts_root {
            return Err(BlockError::root("receiptsRoot", header.receipts_root, self.receipts_root));
        }
        if let Some(computed) = self.requests_hash {
            let got = header.requests_hash.unwrap_or_default();
            if computed != got {
                return Err(BlockError::root("requestsHash", got, computed));
            }
        }
        Ok(())
    }
}

/// The sender of each transaction (`None` when its signature recovers none), recovered on as
/// many threads as `engine` may use: recovery is a third of a block's import time otherwise.
/// From Homestead on a signature's `s` must be in the lower half (EIP-2).
fn recover_senders(
    transactions: &[TxEnvelope],
    homestead: bool,
    engine: Engine,
) -> Vec<Option<Address>> {
    let recover = |tx: &TxEnvelope| {
        if homestead { tx.recover_signer() } else { tx.recover_signer_unchecked() }.ok()
    };
    let threads = match engine {
        Engine::Sequential => 1,
        Engine::Parallel { threads } | Engine::Lanes { threads } | Engine::Auto { threads } => {
            threads.max(1)
        }
    };
    if threads == 1 || transactions.len() < 64 {
        return transactions.iter().map(recover).collect();
    }
    let chunk = transactions.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = transactions
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(recover).collect::<Vec<_>>()))
            .collect();
        // A panicking recovery thread yields no sender: the block is rejected, not the process.
        handles
            .into_iter()
            .zip(transactions.chunks(chunk))
            .flat_map(|(handle, part)| handle.join().unwrap_or_else(|_| vec![None; part.len()]))
            .collect()
    })
}

/// Executes `block` (whose fork is `at`) on `base`: senders, the DAO change, the pre-block
/// system calls, the transactions through `engine`, rewards, withdrawals, deposits and the
/// request system calls. `known_hashes` are the ancestors' hashes by number (`BLOCKHASH`).
/// Rejects the block when a transaction is invalid or a system call fails; compares nothing
/// with the header (see [`Executed::check`]).
pub fn execute_block(
    spec: &ChainSpec,
    engine: Engine,
    block: &ConsensusBlock<TxEnvelope>,
    at: HeaderFork,
    base: &InMemoryState,
    known_hashes: BTreeMap<u64, B256>,
    mode: Receipts,
) -> Result<Executed, BlockError> {
    let started = Instant::now();
    let header = &block.header;
    let body = &block.body;
    let revm_spec = crate::chainspec::spec_of(at.fork);

    // Senders and transaction environments.
    let homestead = at.has(EthereumHardfork::Homestead);
    let spurious_dragon = at.has(EthereumHardfork::SpuriousDragon);
    let mut transactions = Vec::with_capacity(body.transactions.len());
    let mut types = Vec::with_capacity(body.transactions.len());
    let mut blob_gas = 0u64;
    let recovery_started = Instant::now();
    let senders = recover_senders(&body.transactions, homestead, engine);
    let senders_time = recovery_started.elapsed();
    for (index, (tx, sender)) in body.transactions.iter().zip(senders).enumerate() {
        let sender = sender.ok_or(BlockError::Signature { tx: index })?;
        if let TxEnvelope::Eip4844(signed) = tx {
            if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)) {
                return Err(BlockError::TransactionRule {
                    tx: index,
                    reason: "a blob transaction in its network form (with blobs) (EIP-4844)",
                });
            }
        }
        if !spurious_dragon && tx.chain_id().is_some() && tx.is_legacy() {
            return Err(BlockError::TransactionRule {
                tx: index,
                reason: "EIP-155 replay protection before Spurious Dragon",
            });
        }
        let blobs = tx.blob_versioned_hashes().map_or(0, |h| h.len() as u64);
        blob_gas = blob_gas.saturating_add(blobs.saturating_mul(DATA_GAS_PER_BLOB));
        types.push(tx.tx_type());
        transactions.push(TxEnv::from_recovered_tx(tx, sender));
    }
    if let Some(used) = header.blob_gas_used {
        if used != blob_gas {
            return Err(BlockError::BlobGasUsed { got: used, expected: blob_gas });
        }
    }
    if let Some(params) = at.blob {
        if blob_gas > params.max_blob_gas_per_block() {
            return Err(BlockError::BlobGasAboveMax {
                got: blob_gas,
                max: params.max_blob_gas_per_block(),
            });
        }
    }

    // The environment.
    let env = block_env(header, at.merged, at.blob.map(|params| params.update_fraction as u64));
    let context = BlockContext {
        chain_id: spec.chain_id,
        spec: revm_spec,
        header: env,
        blob: ExecBlobParams {
            max_blobs_per_tx: at.blob.map(|p| p.max_blobs_per_tx),
            max_blob_gas_per_block: at.blob.map(|p| p.max_blob_gas_per_block()),
        },
        block_hashes: BlockHashes { known: known_hashes, missing: MissingBlockHash::Error },
    };

    // Execution on an overlay of the parent's state.
    let mut overlay = Overlay::new(base);
    if spec.dao_block() == Some(header.number) {
        post_block::apply_dao_fork(&mut overlay)?;
    }
    system_calls::pre_block(header, &context, &mut overlay)?;
    let mut outcomes = Vec::with_capacity(transactions.len());
    let mut receipts = Vec::with_capacity(transactions.len());
    let mut gas_used = 0u64;
    let mut exec = Block { context, transactions };
    let mut execute_time = Duration::ZERO;
    if at.has(EthereumHardfork::Byzantium) || mode == Receipts::StatusOnly {
        let byzantium = at.has(EthereumHardfork::Byzantium);
        let engine_started = Instant::now();
        let output = execute(engine, &exec, &overlay)?;
        execute_time = engine_started.elapsed();
        for (index, result) in output.results.into_iter().enumerate() {
            let outcome = result.map_err(|source| BlockError::Transaction { tx: index, source })?;
            let status = if byzantium {
                Eip658Value::Eip658(outcome.status.is_success())
            } else {
                Eip658Value::PostState(B256::ZERO)
            };
            receipts.push(receipt(types[index], status, &outcome));
            outcomes.push(outcome);
        }
        gas_used = output.gas_used;
        overlay.apply(&output.changes).map_err(BlockError::State)?;
    } else {
        // One transaction at a time: each receipt holds the state root after it.
        let all = std::mem::take(&mut exec.transactions);
        for (index, tx) in all.into_iter().enumerate() {
            exec.context.header.gas_limit = header.gas_limit.saturating_sub(gas_used);
            exec.transactions = vec![tx];
            let engine_started = Instant::now();
            let output = execute(engine, &exec, &overlay)?;
            execute_time += engine_started.elapsed();
            for result in output.results {
                let mut outcome =
                    result.map_err(|source| BlockError::Transaction { tx: index, source })?;
                overlay.apply(&output.changes).map_err(BlockError::State)?;
                gas_used = gas_used.saturating_add(outcome.gas_used);
                outcome.cumulative_gas_used = gas_used;
                let root = post_state(base, &overlay)?.state_root();
                receipts.push(receipt(types[index], Eip658Value::PostState(root), &outcome));
                outcomes.push(outcome);
            }
        }
        exec.context.header.gas_limit = header.gas_limit;
    }
    let context = exec.context;
    let mut logs_bloom = Bloom::ZERO;
    for outcome in &outcomes {
        for log in &outcome.logs {
            logs_bloom.accrue_log(log);
        }
    }
    let receipts_root = calculate_receipt_root(&receipts);

    // After the transactions: rewards, withdrawals, requests.
    if !at.merged {
        let state_clear = at.has(EthereumHardfork::SpuriousDragon);
        let base_reward = post_block::base_reward(revm_spec);
        post_block::pay_rewards(&mut overlay, header, &body.ommers, base_reward, state_clear)?;
    }
    if let Some(withdrawals) = &body.withdrawals {
        post_block::apply_withdrawals(&mut overlay, withdrawals)?;
    }
    let mut requests_hash = None;
    if at.has(EthereumHardfork::Prague) {
        let mut requests = Requests::default();
        let deposits = post_block::deposit_requests(
            spec.deposit_contract,
            outcomes.iter().flat_map(|o| o.logs.iter()),
        )?;
        let [withdrawals, consolidations] = system_calls::post_block(&context, &mut overlay)?;
        for (kind, data) in [
            (DEPOSIT_REQUEST_TYPE, Bytes::from(deposits)),
            (WITHDRAWAL_REQUEST_TYPE, withdrawals),
            (CONSOLIDATION_REQUEST_TYPE, consolidations),
        ] {
            if !data.is_empty() {
                requests.push_request_with_type(kind, data);
            }
        }
        requests_hash = Some(requests.requests_hash());
    }
    let changes = overlay.to_changes().map_err(BlockError::State)?;
    Ok(Executed {
        outcomes,
        gas_used,
        logs_bloom,
        receipts_root,
        requests_hash,
        changes,
        execute_time,
        senders_time,
        other_time: started.elapsed().saturating_sub(execute_time).saturating_sub(senders_time),
    })
}

/// The parent's state with the overlay's writes applied.
fn post_state<S: StateSource + ?Sized>(
    base: &InMemoryState,
    overlay: &Overlay<'_, S>,
) -> Result<InMemoryState, BlockError> {
    let changes = overlay.to_changes().map_err(BlockError::State)?;
    let mut post = base.clone();
    post.apply(&changes);
    Ok(post)
}
