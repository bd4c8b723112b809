//! Each block rule on its own: a block that breaks exactly that rule is rejected with that
//! rule's error, and the chain (head and state) is exactly as before.

use alloy_consensus::{
    constants::EMPTY_OMMER_ROOT_HASH, proofs::calculate_withdrawals_root, Block, BlockBody, Header,
    TxEnvelope, EMPTY_ROOT_HASH,
};
use alloy_eips::{
    eip1559::{calc_next_block_base_fee, BaseFeeParams},
    eip4895::{Withdrawal, Withdrawals},
};
use alloy_primitives::{Address, Bytes, B256, U256};
use lanes_block::{BlockError, Chain, ChainSpec};
use lanes_executor::Engine;
use lanes_state::{InMemoryState, MemoryAccount};

const RICH: Address = Address::repeat_byte(0x11);
const RECIPIENT: Address = Address::repeat_byte(0x22);

fn genesis_state() -> InMemoryState {
    let mut state = InMemoryState::new();
    state.insert_account(RICH, MemoryAccount::with_balance(U256::from(10).pow(U256::from(18))));
    state
}

/// A Shanghai genesis header over `state`.
fn shanghai_genesis(state: &InMemoryState) -> Header {
    Header {
        number: 0,
        timestamp: 0,
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(7),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        state_root: state.state_root(),
        ..Default::default()
    }
}

/// A Shanghai chain at genesis.
fn chain() -> (Chain, Header) {
    let state = genesis_state();
    let genesis = shanghai_genesis(&state);
    let spec = ChainSpec::from_network("Shanghai", 1).unwrap();
    let chain = Chain::new(spec, genesis.clone(), state, Engine::Parallel { threads: 2 }).unwrap();
    (chain, genesis)
}

/// A valid child of `parent`: no transactions, one withdrawal of 5 gwei to `RECIPIENT`.
fn child(parent: &Header) -> Block<TxEnvelope> {
    let withdrawals =
        vec![Withdrawal { index: 0, validator_index: 0, address: RECIPIENT, amount: 5 }];
    let mut post = genesis_state();
    post.insert_account(RECIPIENT, MemoryAccount::with_balance(U256::from(5_000_000_000u64)));
    let header = Header {
        parent_hash: parent.hash_slow(),
        number: parent.number + 1,
        timestamp: parent.timestamp + 12,
        gas_limit: parent.gas_limit,
        base_fee_per_gas: Some(calc_next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent.base_fee_per_gas.unwrap(),
            BaseFeeParams::ethereum(),
        )),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        withdrawals_root: Some(calculate_withdrawals_root(&withdrawals)),
        state_root: post.state_root(),
        ..Default::default()
    };
    Block {
        header,
        body: BlockBody {
            transactions: vec![],
            ommers: vec![],
            withdrawals: Some(Withdrawals::new(withdrawals)),
        },
    }
}

/// Imports `block` and returns the rule it broke; checks that nothing changed.
fn reject(chain: &mut Chain, block: &Block<TxEnvelope>) -> BlockError {
    let (head, stored) = chain.head();
    let root = stored.state.state_root();
    let error =
        chain.import_rlp(&alloy_rlp::encode(block)).expect_err("the block must be rejected");
    let (head_after, stored_after) = chain.head();
    assert_eq!(head_after, head, "the head moved");
    assert_eq!(stored_after.state.state_root(), root, "the state changed");
    assert!(chain.block(&block.header.hash_slow()).is_none(), "the block was stored");
    *error.rule
}

#[test]
fn a_valid_block_imports_and_becomes_the_head() {
    let (mut chain, genesis) = chain();
    let block = child(&genesis);
    let imported = chain.import_rlp(&alloy_rlp::encode(&block)).unwrap();
    assert!(imported.head);
    assert_eq!(chain.head().0, block.header.hash_slow());
    let state = &chain.head().1.state;
    assert_eq!(state.get(&RECIPIENT).unwrap().balance, U256::from(5_000_000_000u64));
}

#[test]
fn each_header_rule_rejects_and_changes_nothing() {
    let (mut chain, genesis) = chain();
    type Mutation = fn(&mut Block<TxEnvelope>);
    type Check = fn(&BlockError) -> bool;
    let cases: Vec<(&str, Mutation, Check)> = vec![
        ("number", |b| b.header.number = 2, |e| matches!(e, BlockError::Number { got: 2, .. })),
        ("timestamp", |b| b.header.timestamp = 0, |e| matches!(e, BlockError::Timestamp { .. })),
        (
            "gas limit",
            |b| b.header.gas_limit += b.header.gas_limit / 1024,
            |e| matches!(e, BlockError::GasLimit { .. }),
        ),
        (
            "gas used above limit",
            |b| b.header.gas_used = b.header.gas_limit + 1,
            |e| matches!(e, BlockError::GasUsedAboveLimit { .. }),
        ),
        (
            "extra data",
            |b| b.header.extra_data = Bytes::from(vec![0; 33]),
            |e| matches!(e, BlockError::ExtraDataTooLong(33)),
        ),
        (
            "base fee",
            |b| b.header.base_fee_per_gas = Some(8),
            |e| matches!(e, BlockError::BaseFee { got: Some(8), .. }),
        ),
        (
            "post-merge difficulty",
            |b| b.header.difficulty = U256::from(1),
            |e| matches!(e, BlockError::PostMerge(_)),
        ),
        (
            "cancun field before cancun",
            |b| b.header.blob_gas_used = Some(0),
            |e| matches!(e, BlockError::HeaderField { field: "blobGasUsed", present: true }),
        ),
        (
            "withdrawals root",
            |b| b.header.withdrawals_root = Some(B256::repeat_byte(1)),
            |e| matches!(e, BlockError::Root { field: "withdrawalsRoot", .. }),
        ),
        (
            "transactions root",
            |b| b.header.transactions_root = B256::repeat_byte(1),
            |e| matches!(e, BlockError::Root { field: "transactionsRoot", .. }),
        ),
        (
            "gas used",
            |b| b.header.gas_used = 21_000,
            |e| matches!(e, BlockError::GasUsed { got: 21_000, expected: 0 }),
        ),
        (
            "receipts root",
            |b| b.header.receipts_root = B256::repeat_byte(1),
            |e| matches!(e, BlockError::Root { field: "receiptsRoot", .. }),
        ),
        (
            "state root",
            |b| b.header.state_root = B256::repeat_byte(1),
            |e| matches!(e, BlockError::Root { field: "stateRoot", .. }),
        ),
        (
            "unknown parent",
            |b| b.header.parent_hash = B256::repeat_byte(1),
            |e| matches!(e, BlockError::UnknownParent(_)),
        ),
        (
            "withdrawals missing",
            |b| b.body.withdrawals = None,
            |e| matches!(e, BlockError::Withdrawals { present: false }),
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut block = child(&genesis);
        mutate(&mut block);
        let error = reject(&mut chain, &block);
        assert!(expected(&error), "{name}: wrong rule: {error}");
    }
    // The unmodified block still imports: nothing the rejections did stuck.
    chain.import_rlp(&alloy_rlp::encode(child(&genesis))).unwrap();
}

#[test]
fn undecodable_rlp_is_a_typed_error() {
    let (mut chain, _) = chain();
    let error = chain.import_rlp(&[0xc0, 0x01]).unwrap_err();
    assert!(matches!(*error.rule, BlockError::Rlp(_) | BlockError::TrailingBytes(_)));
}

/// A Cancun chain at genesis and a valid empty child (no beacon roots contract in the state:
/// the EIP-4788 call finds no code and changes nothing).
fn cancun() -> (Chain, Block<TxEnvelope>) {
    let state = genesis_state();
    let genesis = Header {
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        ..shanghai_genesis(&state)
    };
    let spec = ChainSpec::from_network("Cancun", 1).unwrap();
    let chain = Chain::new(spec, genesis.clone(), state, Engine::Parallel { threads: 2 }).unwrap();
    let header = Header {
        parent_hash: genesis.hash_slow(),
        number: 1,
        timestamp: 12,
        base_fee_per_gas: Some(calc_next_block_base_fee(
            0,
            30_000_000,
            7,
            BaseFeeParams::ethereum(),
        )),
        parent_beacon_block_root: Some(B256::repeat_byte(3)),
        ..genesis
    };
    let block = Block {
        header,
        body: BlockBody {
            transactions: vec![],
            ommers: vec![],
            withdrawals: Some(Withdrawals::default()),
        },
    };
    (chain, block)
}

#[test]
fn blob_gas_rules_reject_and_change_nothing() {
    let (mut chain, valid) = cancun();
    let mut block = valid.clone();
    block.header.excess_blob_gas = Some(131_072);
    assert!(matches!(
        reject(&mut chain, &block),
        BlockError::ExcessBlobGas { got: 131_072, expected: 0 }
    ));
    let mut block = valid.clone();
    block.header.blob_gas_used = Some(131_072);
    assert!(matches!(
        reject(&mut chain, &block),
        BlockError::BlobGasUsed { got: 131_072, expected: 0 }
    ));
    let mut block = valid.clone();
    block.header.parent_beacon_block_root = None;
    assert!(matches!(
        reject(&mut chain, &block),
        BlockError::HeaderField { field: "parentBeaconBlockRoot", present: false }
    ));
    chain.import_rlp(&alloy_rlp::encode(&valid)).unwrap();
}

#[test]
fn pre_merge_difficulty_and_ommer_rules() {
    use lanes_block::{header::expected_difficulty, EthereumHardfork};
    let state = genesis_state();
    let genesis = Header {
        gas_limit: 3_141_592,
        difficulty: U256::from(131_072),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        state_root: state.state_root(),
        ..Default::default()
    };
    let spec = ChainSpec::from_network("Frontier", 1).unwrap();
    let mut chain =
        Chain::new(spec, genesis.clone(), state, Engine::Parallel { threads: 2 }).unwrap();
    let miner = Address::repeat_byte(0x33);
    let mut post = genesis_state();
    post.insert_account(
        miner,
        MemoryAccount::with_balance(U256::from(5) * U256::from(10).pow(U256::from(18))),
    );
    let valid = Block::<TxEnvelope> {
        header: Header {
            parent_hash: genesis.hash_slow(),
            number: 1,
            timestamp: 10,
            beneficiary: miner,
            difficulty: expected_difficulty(EthereumHardfork::Frontier, 1, 10, &genesis),
            state_root: post.state_root(),
            ..genesis.clone()
        },
        body: BlockBody { transactions: vec![], ommers: vec![], withdrawals: None },
    };
    let mut block = valid.clone();
    block.header.difficulty += U256::from(1);
    assert!(matches!(reject(&mut chain, &block), BlockError::Difficulty { .. }));
    // An ommer that is the block's own parent (the genesis) is an ancestor.
    let mut block = valid.clone();
    block.body.ommers = vec![genesis.clone()];
    block.header.ommers_hash = alloy_consensus::proofs::calculate_ommers_root(&block.body.ommers);
    assert!(matches!(reject(&mut chain, &block), BlockError::Ommer { index: 0, .. }));
    // Without the block reward the state root is wrong.
    let mut block = valid.clone();
    block.header.state_root = genesis.state_root;
    assert!(matches!(reject(&mut chain, &block), BlockError::Root { field: "stateRoot", .. }));
    chain.import_rlp(&alloy_rlp::encode(&valid)).unwrap();
    assert_eq!(chain.head().0, valid.header.hash_slow());
}
