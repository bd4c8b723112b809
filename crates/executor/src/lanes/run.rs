//! One lane running its transactions of one epoch: plain revm over the lane's overlay, with the
//! beneficiary's fee deferred when a transaction never loaded the beneficiary (otherwise every
//! transaction of every lane would read and write it). No block-level gas check runs here: the
//! gas left in the block depends on the other lanes; the round checks it in block order after.

use super::{
    log::LaneDb,
    partition::{Learned, Plan},
};
use crate::{
    block::Block,
    error::ExecutionError,
    evm::{classify_error, outcome_of, DeferringHandler, Eip7610},
    outcome::TxResult,
    panic_message,
    sequential::Tracking,
};
use alloy_primitives::U256;
use lanes_state::StateSource;
use revm::{
    context::{BlockEnv, CfgEnv, TxEnv},
    handler::Handler,
    Context, ExecuteEvm, Journal, MainBuilder,
};
use std::{
    ops::Range,
    panic::{catch_unwind, AssertUnwindSafe},
};

/// One lane of a round: its overlay and what its transactions produced so far.
#[derive(Debug)]
pub(crate) struct Lane<'a, S: ?Sized> {
    /// The overlay (taken while an epoch runs).
    pub(crate) db: Option<LaneDb<'a, S>>,
    /// The results of its transactions, in block order (the cumulative gas not set yet).
    pub(crate) results: Vec<(u32, TxResult)>,
    /// The fees its transactions deferred, in block order.
    pub(crate) fees: Vec<(u32, U256)>,
    /// The transaction at which it stopped with an error that stops the block (if the
    /// transaction's reads hold).
    pub(crate) stopped: Option<(usize, ExecutionError)>,
}

impl<'a, S: StateSource + ?Sized> Lane<'a, S> {
    /// A lane over `db`.
    pub(crate) fn new(db: LaneDb<'a, S>) -> Self {
        Self { db: Some(db), results: Vec::new(), fees: Vec::new(), stopped: None }
    }

    /// Runs the transactions of `range` that `plan` gives to lane `me`, in block order.
    pub(crate) fn run_epoch(
        &mut self,
        block: &'a Block,
        cfg: &CfgEnv,
        plan: &Plan,
        learned: &Learned,
        me: usize,
        range: Range<usize>,
    ) {
        if self.stopped.is_some() {
            return;
        }
        let Some(mut db) = self.db.take() else { return };
        db.track.start_epoch(range.start);
        let mine = |index: &usize| plan.lane_of(&block.transactions[*index], learned) == me;
        let Some(first) = range.clone().find(mine) else {
            self.db = Some(db);
            return;
        };
        let mut evm = Eip7610(
            Context::<BlockEnv, TxEnv, CfgEnv, _, Journal<_>, ()>::new(db, block.context.spec)
                .with_cfg(cfg.clone())
                .with_block(&block.context.header)
                .with_tx(&block.transactions[first])
                .build_mainnet(),
        );
        for index in (first..range.end).filter(mine) {
            let tx = &block.transactions[index];
            evm.0.ctx.tx = tx;
            evm.0.ctx.journaled_state.database.track.begin(index);
            let outcome = catch_unwind(AssertUnwindSafe(|| DeferringHandler::new().run(&mut evm)));
            let state = evm.0.finalize();
            let result = match outcome {
                Err(payload) => {
                    let message = panic_message(&payload);
                    self.stopped = Some((index, ExecutionError::Panic { tx: index, message }));
                    break;
                }
                Ok(Ok(result)) => {
                    use revm::database_interface::DatabaseCommit;
                    let db = &mut evm.0.ctx.journaled_state.database;
                    db.commit(state);
                    if let Some(fee) = db.track.fee.take() {
                        self.fees.push((index as u32, fee));
                    }
                    Ok(outcome_of(tx, result))
                }
                Ok(Err(error)) => match classify_error(index, error) {
                    Ok(invalid) => Err(invalid),
                    Err(fatal) => {
                        self.stopped = Some((index, fatal));
                        break;
                    }
                },
            };
            self.results.push((index as u32, result));
        }
        self.db = Some(evm.0.ctx.journaled_state.database);
    }
}
