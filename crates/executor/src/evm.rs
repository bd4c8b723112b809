//! The pieces both engines share, so that they apply exactly the same rules: the revm
//! configuration of a block, the block-level limits checked before each transaction, how a
//! revm result becomes a [`TxOutcome`], and what a transaction's journal means for an account
//! (the commit semantics of revm's own `State`, EIP-161 included).

use crate::{
    block::BlockContext,
    error::ExecutionError,
    outcome::{BlockOutput, ExecutionStats, InvalidTx, TxOutcome, TxResult, TxStatus},
};
use alloy_primitives::{Address, U256};
use lanes_state::{SourceError, StateChanges};
use revm::{
    context::FrameStack,
    context::{BlockEnv, CfgEnv, ContextError, TxEnv},
    context_interface::{
        result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction},
        Block as _, Cfg as _, ContextTr, JournalTr, Transaction as _,
    },
    database_interface::{DBErrorMarker, Database},
    handler::{
        evm::{ContextDbError, FrameInitResult, FrameTr},
        post_execution, EthFrame, EvmTr, FrameInitOrResult, FrameResult, Handler, ItemOrResult,
        MainnetEvm,
    },
    interpreter::{
        interpreter::EthInterpreter, interpreter_action::FrameInit, CreateInputs, FrameInput, Gas,
    },
    primitives::constants::CALL_STACK_LIMIT,
    primitives::{eip4844::GAS_PER_BLOB, hardfork::SpecId, KECCAK_EMPTY},
    state::{Account, AccountInfo, EvmState},
    Context, Journal,
};
use std::marker::PhantomData;

/// The error type of the executors' revm databases.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// The state source failed.
    #[error(transparent)]
    Source(SourceError),
    /// `BLOCKHASH` asked for an unknown height.
    #[error("block hash {0} is unknown")]
    MissingBlockHash(u64),
}

impl DBErrorMarker for DbError {}

/// The revm configuration for a block.
pub(crate) fn cfg_env(block: &BlockContext) -> CfgEnv {
    let mut cfg =
        CfgEnv::new().with_chain_id(block.chain_id).with_spec_and_mainnet_gas_params(block.spec);
    cfg.max_blobs_per_tx = block.blob.max_blobs_per_tx.or(Some(
        if block.spec.is_enabled_in(SpecId::OSAKA) || !block.spec.is_enabled_in(SpecId::PRAGUE) {
            6
        } else {
            9
        },
    ));
    cfg
}

/// Blob gas a transaction uses.
pub(crate) fn blob_gas_of(tx: &TxEnv) -> u64 {
    tx.blob_hashes.len() as u64 * GAS_PER_BLOB
}

/// Gas and blob gas used so far in a block, and the checks against the block's limits that
/// come before a transaction is executed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlockGas {
    pub(crate) gas_used: u64,
    pub(crate) blob_gas_used: u64,
}

impl BlockGas {
    /// The block's output: the transactions' `results`, the state `changes`, this gas, and
    /// `stats` (no trace).
    pub(crate) fn output(
        self,
        results: Vec<TxResult>,
        changes: StateChanges,
        stats: ExecutionStats,
    ) -> BlockOutput {
        BlockOutput {
            results,
            changes,
            gas_used: self.gas_used,
            blob_gas_used: self.blob_gas_used,
            stats,
            trace: None,
        }
    }

    /// Checks that `tx` fits in what the block has left.
    pub(crate) fn check(&self, block: &BlockContext, tx: &TxEnv) -> Result<(), InvalidTx> {
        let available = block.header.gas_limit.saturating_sub(self.gas_used);
        if tx.gas_limit > available {
            return Err(InvalidTx::BlockGasExceeded { gas_limit: tx.gas_limit, available });
        }
        if let Some(max) = block.blob.max_blob_gas_per_block {
            let available = max.saturating_sub(self.blob_gas_used);
            let blob_gas = blob_gas_of(tx);
            if blob_gas > available {
                return Err(InvalidTx::BlobGasExceeded { blob_gas, available });
            }
        }
        Ok(())
    }

    /// Adds a valid transaction's gas and returns its outcome with the cumulative gas set.
    pub(crate) fn add(&mut self, tx: &TxEnv, result: ExecutionResult<HaltReason>) -> TxOutcome {
        let mut outcome = outcome_of(tx, result);
        self.count(&mut outcome);
        outcome
    }

    /// Adds the gas of a valid transaction's `outcome` and sets its cumulative gas.
    pub(crate) fn count(&mut self, outcome: &mut TxOutcome) {
        self.gas_used += outcome.gas_used;
        self.blob_gas_used += outcome.blob_gas_used;
        outcome.cumulative_gas_used = self.gas_used;
    }
}

/// The outcome of a valid transaction, its cumulative gas not set yet ([`BlockGas::count`]).
pub(crate) fn outcome_of(tx: &TxEnv, result: ExecutionResult<HaltReason>) -> TxOutcome {
    let gas_used = result.tx_gas_used();
    let created_address = result.created_address();
    let (status, logs, output) = match result {
        ExecutionResult::Success { reason, logs, output, .. } => {
            (TxStatus::Success(reason), logs, output.into_data())
        }
        ExecutionResult::Revert { output, logs, .. } => (TxStatus::Revert, logs, output),
        ExecutionResult::Halt { reason, logs, .. } => {
            (TxStatus::Halt(reason), logs, Default::default())
        }
    };
    TxOutcome {
        status,
        gas_used,
        cumulative_gas_used: 0,
        blob_gas_used: blob_gas_of(tx),
        logs,
        output,
        created_address,
    }
}

/// The fee a transaction that used `gas` pays the beneficiary: the same arithmetic as revm's
/// `post_execution::reward_beneficiary`, for the engines that defer the payment.
pub(crate) fn beneficiary_fee<CTX: ContextTr>(ctx: &CTX, gas: &Gas) -> U256 {
    let basefee = ctx.block().basefee() as u128;
    let effective_gas_price = ctx.tx().effective_gas_price(basefee);
    let coinbase_gas_price = if ctx.cfg().spec().into().is_enabled_in(SpecId::LONDON) {
        effective_gas_price.saturating_sub(basefee)
    } else {
        effective_gas_price
    };
    let effective_used = gas.used().saturating_sub(gas.reservoir());
    U256::from(coinbase_gas_price * effective_used as u128)
}

/// A database that keeps the beneficiary fee its running transaction deferred.
pub(crate) trait DefersFee {
    /// Records the running transaction's deferred fee.
    fn defer_fee(&mut self, fee: U256);

    /// Whether fees are deferred at all (else every transaction pays the beneficiary as revm
    /// does).
    fn defers_fees(&self) -> bool {
        true
    }
}

/// revm's mainnet handler with the beneficiary's fee deferred (into the database, see
/// [`DefersFee`]) when the transaction never loaded the beneficiary: otherwise every
/// transaction would read and write it. A transaction that loaded it pays exactly as revm
/// does; the engines check that no transaction read it after a deferred fee.
pub(crate) struct DeferringHandler<E>(PhantomData<E>);

impl<E> DeferringHandler<E> {
    /// The handler.
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'a, DB> Handler for DeferringHandler<Eip7610<MainnetEvm<BlockCtx<'a, DB>>>>
where
    DB: Database<Error = DbError> + StorageProbe + DefersFee,
{
    type Evm = Eip7610<MainnetEvm<BlockCtx<'a, DB>>>;
    type Error = EVMError<DbError, InvalidTransaction>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        let ctx = evm.ctx();
        if !ctx.journaled_state.database.defers_fees()
            || ctx.journaled_state.inner.state.contains_key(&ctx.block.beneficiary)
        {
            return post_execution::reward_beneficiary(ctx, exec_result.gas()).map_err(From::from);
        }
        let fee = beneficiary_fee(ctx, exec_result.gas());
        ctx.journaled_state.database.defer_fee(fee);
        Ok(())
    }
}

/// The revm context of a transaction of a block: the block's header, the transaction, and
/// `DB` under revm's journal.
pub(crate) type BlockCtx<'a, DB> = Context<&'a BlockEnv, &'a TxEnv, CfgEnv, DB, Journal<DB>, ()>;

/// Sorts a revm error into "this transaction is invalid" and "this block cannot run".
pub(crate) fn classify_error(
    tx: usize,
    error: EVMError<DbError, InvalidTransaction>,
) -> Result<InvalidTx, ExecutionError> {
    match error {
        EVMError::Transaction(invalid) => Ok(InvalidTx::Rejected(invalid)),
        EVMError::Header(header) => Err(ExecutionError::InvalidHeader(header)),
        EVMError::Database(DbError::Source(source)) => Err(ExecutionError::State { tx, source }),
        EVMError::Database(DbError::MissingBlockHash(number)) => {
            Err(ExecutionError::MissingBlockHash { tx, number })
        }
        EVMError::Custom(message) => Err(ExecutionError::Evm { tx, message }),
        EVMError::CustomAny(any) => Err(ExecutionError::Evm { tx, message: any.to_string() }),
    }
}

/// What a transaction did to one account, following revm's own commit rules.
#[derive(Debug)]
pub(crate) enum AccountEffect<'a> {
    /// Self-destructed, or touched while empty (EIP-161): gone, storage wiped.
    Destroyed,
    /// Created by this transaction: new info, storage wiped then set to `changed_slots`.
    Created(&'a AccountInfo),
    /// Updated in place: new info, `changed_slots` written over the old storage.
    Changed(&'a AccountInfo),
}

impl<'a> AccountEffect<'a> {
    /// The effect of `account` from a finished transaction's journal, or `None` when the
    /// transaction only read it.
    pub(crate) fn of(account: &'a Account) -> Option<Self> {
        if !account.is_touched() {
            return None;
        }
        if account.is_selfdestructed() {
            return Some(Self::Destroyed);
        }
        if account.is_created() {
            return Some(Self::Created(&account.info));
        }
        if account.is_empty() {
            // EIP-161; revm's journal already kept pre-Spurious-Dragon empty accounts alive by
            // marking them created or untouched.
            return Some(Self::Destroyed);
        }
        Some(Self::Changed(&account.info))
    }
}

/// The slots of `account` whose value the transaction changed.
pub(crate) fn changed_slots(account: &Account) -> impl Iterator<Item = (U256, U256)> + '_ {
    account.storage.iter().filter(|(_, s)| s.is_changed()).map(|(k, s)| (*k, s.present_value))
}

/// A revm database that can tell whether an account has storage right now (EIP-7610).
pub(crate) trait StorageProbe {
    /// Whether `address` has non-zero storage, as the current transaction sees the state.
    fn has_storage(&mut self, address: Address) -> Result<bool, DbError>;
}

/// revm's EVM with EIP-7610 added: creating a contract at an address that has no code and no
/// nonce but has storage is a collision. revm 43 only checks code and nonce (the case cannot
/// arise on mainnet after EIP-161, but Ethereum's tests cover it).
///
/// Before a create frame that would reach revm's collision check, the target is loaded (revm
/// loads it at that point too) and, if it has storage, its nonce is set to 1 for the duration
/// of the frame's initialisation so that revm's own check reports the collision with revm's
/// own gas and nonce accounting; the nonce is put back before anything else runs.
#[derive(Debug)]
pub(crate) struct Eip7610<E>(pub(crate) E);

impl<E> Eip7610<E>
where
    E: EvmTr<Frame = EthFrame<EthInterpreter>>,
    <E::Context as ContextTr>::Db: StorageProbe,
    <E::Context as ContextTr>::Journal: JournalTr<State = EvmState>,
{
    /// Loads the target of a create frame that gets as far as the collision check and, when
    /// EIP-7610 makes it a collision, gives it a temporary nonce. Returns the target if so.
    fn arm_collision(
        &mut self,
        depth: usize,
        inputs: &CreateInputs,
    ) -> Result<Option<Address>, ContextDbError<E::Context>>
    where
        <<E::Context as ContextTr>::Db as Database>::Error: From<DbError>,
    {
        if depth > CALL_STACK_LIMIT as usize {
            return Ok(None);
        }
        let ctx = self.0.ctx();
        let journal = ctx.journal_mut();
        let (balance, nonce) = {
            let caller = journal.load_account(inputs.caller()).map_err(ContextError::Db)?;
            (caller.data.info.balance, caller.data.info.nonce)
        };
        if balance < inputs.value() || nonce == u64::MAX {
            return Ok(None);
        }
        let target = inputs.created_address(nonce);
        let (empty_code, zero_nonce, created) = {
            let account = journal.load_account(target).map_err(ContextError::Db)?;
            let info = &account.data.info;
            (info.code_hash == KECCAK_EMPTY, info.nonce == 0, account.data.is_created())
        };
        if !(empty_code && zero_nonce) || created {
            return Ok(None);
        }
        let has_storage =
            journal.db_mut().has_storage(target).map_err(|e| ContextError::Db(e.into()))?;
        if !has_storage {
            return Ok(None);
        }
        if let Some(account) = journal.evm_state_mut().get_mut(&target) {
            account.info.nonce = 1;
        }
        Ok(Some(target))
    }
}

impl<E> EvmTr for Eip7610<E>
where
    E: EvmTr<Frame = EthFrame<EthInterpreter>>,
    <E::Context as ContextTr>::Db: StorageProbe,
    <E::Context as ContextTr>::Journal: JournalTr<State = EvmState>,
    <<E::Context as ContextTr>::Db as Database>::Error: From<DbError>,
{
    type Context = E::Context;
    type Instructions = E::Instructions;
    type Precompiles = E::Precompiles;
    type Frame = E::Frame;

    fn all(
        &self,
    ) -> (&Self::Context, &Self::Instructions, &Self::Precompiles, &FrameStack<Self::Frame>) {
        self.0.all()
    }

    fn all_mut(
        &mut self,
    ) -> (
        &mut Self::Context,
        &mut Self::Instructions,
        &mut Self::Precompiles,
        &mut FrameStack<Self::Frame>,
    ) {
        self.0.all_mut()
    }

    fn frame_init(
        &mut self,
        frame_input: FrameInit,
    ) -> Result<FrameInitResult<'_, Self::Frame>, ContextDbError<Self::Context>> {
        let armed = match &frame_input.frame_input {
            FrameInput::Create(inputs) => self.arm_collision(frame_input.depth, inputs)?,
            _ => None,
        };
        let Some(target) = armed else { return self.0.frame_init(frame_input) };
        let result = match self.0.frame_init(frame_input)? {
            ItemOrResult::Result(result) => Ok(result),
            ItemOrResult::Item(_) => Err(()),
        };
        if let Some(account) = self.0.ctx().journal_mut().evm_state_mut().get_mut(&target) {
            account.info.nonce = 0;
        }
        match result {
            Ok(result) => Ok(ItemOrResult::Result(result)),
            Err(()) => Err(ContextError::Custom(
                "EIP-7610: revm did not report the armed create collision".into(),
            )),
        }
    }

    fn frame_run(
        &mut self,
    ) -> Result<FrameInitOrResult<Self::Frame>, ContextDbError<Self::Context>> {
        self.0.frame_run()
    }

    fn frame_return_result(
        &mut self,
        result: <Self::Frame as FrameTr>::FrameResult,
    ) -> Result<Option<<Self::Frame as FrameTr>::FrameResult>, ContextDbError<Self::Context>> {
        self.0.frame_return_result(result)
    }
}
