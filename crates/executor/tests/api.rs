//! The executor API's contract, on small hand-made blocks, for both engines: invalid
//! transactions change nothing and the block goes on, block-level gas limits are checked in
//! order, errors name the transaction, and both engines agree.

use alloy_primitives::{Address, Bytes, U256};
use lanes_executor::{
    execute, execute_with,
    revm::{
        context::{BlockEnv, TxEnv},
        context_interface::result::InvalidTransaction,
        primitives::{hardfork::SpecId, TxKind},
    },
    Block, BlockContext, Engine, EngineKind, ExecuteOptions, ExecutionError, FallbackReason,
    InvalidTx,
};
use lanes_state::{InMemoryState, MemoryAccount};

const GWEI: u64 = 1_000_000_000;
const ENGINES: [Engine; 4] = [
    Engine::Sequential,
    Engine::Parallel { threads: 1 },
    Engine::Parallel { threads: 2 },
    Engine::Parallel { threads: 4 },
];

fn sender(i: u8) -> Address {
    Address::with_last_byte(i)
}

fn state(senders: u8) -> InMemoryState {
    let mut state = InMemoryState::new();
    for i in 1..=senders {
        state.insert_account(sender(i), MemoryAccount::with_balance(U256::from(10u64.pow(18))));
    }
    state
}

fn context(gas_limit: u64) -> BlockContext {
    let header = BlockEnv {
        number: U256::from(100),
        beneficiary: Address::repeat_byte(0xcc),
        gas_limit,
        basefee: GWEI,
        prevrandao: Some(Default::default()),
        ..Default::default()
    };
    BlockContext::new(SpecId::SHANGHAI, header)
}

fn transfer(from: u8, nonce: u64, to: Address, value: u64) -> TxEnv {
    TxEnv {
        caller: sender(from),
        gas_limit: 21_000,
        gas_price: (2 * GWEI) as u128,
        kind: TxKind::Call(to),
        value: U256::from(value),
        nonce,
        chain_id: Some(1),
        ..Default::default()
    }
}

#[test]
fn an_invalid_transaction_changes_nothing_and_the_block_goes_on() {
    let state = state(2);
    let recipient = Address::repeat_byte(0xee);
    let block = Block {
        context: context(30_000_000),
        transactions: vec![
            transfer(1, 0, recipient, 1),
            transfer(2, 5, recipient, 2), // nonce too high
            transfer(1, 1, recipient, 3),
        ],
    };
    let reference = execute(Engine::Sequential, &block, &state).unwrap();
    for engine in ENGINES {
        let output = execute(engine, &block, &state).unwrap();
        assert!(output.results[0].is_ok(), "{engine:?}");
        assert!(
            matches!(
                output.results[1],
                Err(InvalidTx::Rejected(InvalidTransaction::NonceTooHigh { tx: 5, state: 0 }))
            ),
            "{engine:?}: {:?}",
            output.results[1]
        );
        let third = output.results[2].as_ref().expect("valid");
        assert_eq!(third.cumulative_gas_used, 42_000, "{engine:?}");
        assert_eq!(output.gas_used, 42_000);
        let received = output.changes.accounts[&recipient].info.unwrap().balance;
        assert_eq!(received, U256::from(4), "{engine:?}: only the valid transfers arrived");
        assert!(
            !output.changes.accounts.contains_key(&sender(2)),
            "{engine:?}: the invalid sender is untouched"
        );
        assert!(output.same_result(&reference), "{engine:?}");
    }
}

#[test]
fn gas_above_what_the_block_has_left_is_rejected_in_order() {
    let state = state(3);
    let recipient = Address::repeat_byte(0xee);
    // Room for two transfers only.
    let block = Block {
        context: context(50_000),
        transactions: vec![
            transfer(1, 0, recipient, 1),
            transfer(2, 0, recipient, 1),
            transfer(3, 0, recipient, 1),
        ],
    };
    for engine in ENGINES {
        let output = execute(engine, &block, &state).unwrap();
        assert_eq!(
            output.results[2],
            Err(InvalidTx::BlockGasExceeded { gas_limit: 21_000, available: 8_000 }),
            "{engine:?}"
        );
        assert!(!output.changes.accounts.contains_key(&sender(3)), "{engine:?}");
        assert_eq!(output.changes.accounts[&recipient].info.unwrap().balance, U256::from(2));
    }
}

#[test]
fn a_missing_block_hash_is_an_error_naming_the_transaction() {
    let mut state = state(1);
    // BLOCKHASH(99); POP; STOP
    let code = Bytes::from_static(&[0x60, 99, 0x40, 0x50, 0x00]);
    let contract = Address::repeat_byte(0xab);
    state.insert_account(
        contract,
        MemoryAccount::with_code(lanes_state::Bytecode::new_raw(code), U256::ZERO),
    );
    let mut call = transfer(1, 0, contract, 0);
    call.gas_limit = 100_000;
    let block = Block { context: context(30_000_000), transactions: vec![call] };
    for engine in ENGINES {
        match execute(engine, &block, &state) {
            Err(ExecutionError::MissingBlockHash { tx: 0, number: 99 }) => {}
            other => panic!("{engine:?}: {other:?}"),
        }
    }
}

#[test]
fn an_empty_block_changes_nothing() {
    let state = state(1);
    let block = Block { context: context(30_000_000), transactions: vec![] };
    for engine in ENGINES {
        let output = execute(engine, &block, &state).unwrap();
        assert!(output.results.is_empty() && output.changes.is_empty() && output.gas_used == 0);
    }
    // The adaptive engine runs it sequentially, and says why.
    let auto = execute(Engine::Auto { threads: 2 }, &block, &state).unwrap();
    assert_eq!(auto.stats.engine, EngineKind::Sequential);
    assert_eq!(auto.stats.fallback, Some(FallbackReason::TooFewTransactions { txs: 0 }));
    assert!(auto.trace.is_none());
    let traced = execute_with(
        Engine::Auto { threads: 2 },
        &block,
        &state,
        ExecuteOptions { trace: true, ..Default::default() },
    )
    .unwrap();
    assert!(traced.trace.is_some(), "a traced run keeps its trace on the policy's path too");
}

#[test]
fn fees_reach_the_beneficiary_exactly() {
    let state = state(3);
    let recipient = Address::repeat_byte(0xee);
    let block = Block {
        context: context(30_000_000),
        transactions: (1..=3).map(|i| transfer(i, 0, recipient, 10)).collect(),
    };
    for engine in ENGINES {
        let output = execute(engine, &block, &state).unwrap();
        let beneficiary = output.changes.accounts[&block.context.header.beneficiary].info.unwrap();
        // Tip = gas price - base fee = 1 gwei per gas, 21,000 gas, 3 transactions.
        assert_eq!(beneficiary.balance, U256::from(3 * 21_000 * GWEI), "{engine:?}");
    }
}

#[test]
fn only_what_differs_from_the_pre_block_state_is_a_change() {
    let mut state = state(3);
    // Exists, and is paid nothing: touched, written back as it was.
    let idle = Address::repeat_byte(0x11);
    state.insert_account(idle, MemoryAccount::with_balance(U256::from(7)));
    // Exists with code, and is paid: its balance changes, its code does not.
    let contract = Address::repeat_byte(0x22);
    let stop = lanes_executor::revm::bytecode::Bytecode::new_raw(Bytes::from_static(&[0x00]));
    state.insert_account(contract, MemoryAccount::with_code(stop, U256::from(1)));
    // Does not exist before the block.
    let fresh = Address::repeat_byte(0x33);
    let block = Block {
        context: context(30_000_000),
        transactions: vec![
            transfer(1, 0, idle, 0),
            transfer(2, 0, contract, 5),
            transfer(3, 0, fresh, 9),
        ],
    };
    let sequential = execute(Engine::Sequential, &block, &state).unwrap();
    let changes = &sequential.changes.accounts;
    assert!(!changes.contains_key(&idle), "an account written back as it was is no change");
    let paid = &changes[&contract];
    assert_eq!(paid.info.unwrap().balance, U256::from(6));
    assert!(paid.code.is_none(), "the contract's code is not new");
    assert_eq!(changes[&fresh].info.unwrap().balance, U256::from(9));
    for engine in ENGINES {
        assert_eq!(
            execute(engine, &block, &state).unwrap().changes,
            sequential.changes,
            "{engine:?}"
        );
    }
}

#[test]
fn the_policy_times_a_block_before_running_it_in_parallel() {
    let state = state(40);
    let transactions = (1..=40)
        .map(|i| TxEnv { gas_limit: 100_000, ..transfer(i, 0, Address::repeat_byte(0xee), 1) })
        .collect();
    let block = Block { context: context(30_000_000), transactions };
    let sequential = execute(Engine::Sequential, &block, &state).unwrap();
    let auto = |round_trip_ns| {
        let options = ExecuteOptions {
            round_trip: Some(std::time::Duration::from_nanos(round_trip_ns)),
            ..Default::default()
        };
        execute_with(Engine::Auto { threads: 2 }, &block, &state, options).unwrap()
    };
    // A second per round trip: no transaction is worth it, the sequential engine finishes.
    let far = auto(1_000_000_000);
    assert!(far.same_result(&sequential), "{:?}", far.first_difference(&sequential));
    let probe = far.stats.probe.expect("probed");
    assert_eq!(probe.transactions, 8, "40 / 32 transactions, at least 8");
    assert_eq!(far.stats.fallback, Some(FallbackReason::CheapTransactions(probe)));
    assert_eq!(far.stats.engine, EngineKind::Sequential);
    // With the cores close a block this small is not probed: the parallel engine runs it.
    let close = auto(1);
    assert!(close.same_result(&sequential));
    assert_eq!(
        (close.stats.probe, close.stats.engine),
        (None, EngineKind::Parallel { threads: 2 })
    );
}
