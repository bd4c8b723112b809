//! Every generator: the parallel engine (1, 2, 4 and 8 threads) gives the sequential result,
//! and the sequential result shows the workload did what it is meant to do.

mod common;

use alloy_primitives::{keccak256, Address, B256, U256};
use common::{
    assert_all_succeeded, balance_after, balance_before, logs, nonce_after, outcome,
    run_all_engines, storage_after, tip_paid,
};
use lanes_executor::{
    revm::{
        context::TxEnv,
        context_interface::{either::Either, result::HaltReason},
        primitives::hardfork::SpecId,
    },
    TxStatus,
};
use lanes_workloads::{
    abi::{address_at, selector, word_at},
    contracts::{coinbase_probe, counter, create2, delegate, erc20, faulty, uniswap},
    env::{BASE_FEE, BENEFICIARY, BENEFICIARY_BALANCE},
    Workload,
};
use std::collections::{BTreeMap, HashMap, HashSet};

const SEED: u64 = 0x1a4e5;

fn to(tx: &TxEnv) -> Address {
    tx.kind.to().copied().expect("a call")
}

fn selector_of(tx: &TxEnv) -> [u8; 4] {
    tx.data.get(..4).map(|s| s.try_into().expect("4 bytes")).unwrap_or_default()
}

/// Gas price the sender pays per gas.
fn effective_price(tx: &TxEnv) -> U256 {
    let base = BASE_FEE as u128;
    U256::from(match tx.gas_priority_fee {
        Some(priority) => tx.gas_price.min(base + priority),
        None => tx.gas_price,
    })
}

#[test]
fn raw_transfers() {
    let workload = lanes_workloads::raw_transfers(1_000, SEED);
    assert_eq!(workload.len(), 1_000);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    let senders: HashSet<_> = workload.block.transactions.iter().map(|t| t.caller).collect();
    assert_eq!(senders.len(), 1_000, "distinct senders");
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        assert_eq!(outcome(&output, i).gas_used, 21_000);
        let recipient = to(tx);
        assert!(!senders.contains(&recipient));
        assert_eq!(
            balance_after(&workload, &output, recipient),
            balance_before(&workload.state, recipient) + tx.value
        );
    }
    assert_eq!(output.gas_used, 21_000 * 1_000);
}

#[test]
fn transfer_chain() {
    let workload = lanes_workloads::transfer_chain(1_000, SEED);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    let sender = workload.block.transactions[0].caller;
    let mut spent = U256::ZERO;
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        assert_eq!((tx.caller, tx.nonce), (sender, i as u64));
        spent += tx.value + effective_price(tx) * U256::from(outcome(&output, i).gas_used);
        assert_eq!(balance_after(&workload, &output, to(tx)), tx.value, "new recipient");
    }
    assert_eq!(nonce_after(&workload, &output, sender), 1_000);
    assert_eq!(
        balance_after(&workload, &output, sender),
        balance_before(&workload.state, sender) - spent
    );
}

#[test]
fn hot_recipient() {
    let workload = lanes_workloads::hot_recipient(1_000, SEED);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    let recipient = to(&workload.block.transactions[0]);
    let total: U256 = workload.block.transactions.iter().map(|t| t.value).sum();
    assert!(workload.block.transactions.iter().all(|t| to(t) == recipient));
    assert_eq!(
        balance_after(&workload, &output, recipient),
        balance_before(&workload.state, recipient) + total
    );
}

#[test]
fn erc20_transfers() {
    let workload = lanes_workloads::erc20(1_000, SEED);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        let token = to(tx);
        let recipient = address_at(&tx.data[4..], 0);
        let amount = word_at(&tx.data[4..], 1);
        let log = match outcome(&output, i).logs.as_slice() {
            [log] => log,
            other => panic!("transaction {i}: expected one Transfer log, got {other:?}"),
        };
        assert_eq!(log.address, token);
        assert_eq!(log.topics()[0], erc20::transfer_topic());
        assert_eq!(log.topics()[1], tx.caller.into_word());
        assert_eq!(log.topics()[2], recipient.into_word());
        assert_eq!(word_at(&log.data.data, 0), amount);
        let sender_slot = erc20::balance_slot(tx.caller);
        let recipient_slot = erc20::balance_slot(recipient);
        let before = |slot| {
            workload.state.get(&token).unwrap().storage.get(&slot).copied().unwrap_or_default()
        };
        assert_eq!(
            storage_after(&workload, &output, token, sender_slot),
            before(sender_slot) - amount
        );
        assert_eq!(
            storage_after(&workload, &output, token, recipient_slot),
            before(recipient_slot) + amount
        );
    }
}

/// Every swap succeeded with a Swap and a Sync log from a pair.
fn assert_swaps(workload: &Workload) -> lanes_executor::BlockOutput {
    let output = run_all_engines(workload);
    assert_all_succeeded(workload, &output);
    for i in 0..workload.len() {
        let logs = &outcome(&output, i).logs;
        assert!(
            logs.iter().any(|l| l.topics()[0] == uniswap::swap_topic()),
            "transaction {i}: no Swap"
        );
        assert!(
            logs.iter().any(|l| l.topics()[0] == uniswap::sync_topic()),
            "transaction {i}: no Sync"
        );
    }
    output
}

#[test]
fn uniswap_independent_pools() {
    let workload = lanes_workloads::uniswap(300, SEED);
    let output = assert_swaps(&workload);
    let pairs: HashSet<_> = (0..workload.len())
        .map(|i| {
            outcome(&output, i)
                .logs
                .iter()
                .find(|l| l.topics()[0] == uniswap::swap_topic())
                .unwrap()
                .address
        })
        .collect();
    assert_eq!(pairs.len(), 300, "each swap on its own pool");
}

#[test]
fn uniswap_shared_pool() {
    let workload = lanes_workloads::uniswap_shared_pool(300, SEED);
    let output = assert_swaps(&workload);
    let pair = outcome(&output, 0)
        .logs
        .iter()
        .find(|l| l.topics()[0] == uniswap::swap_topic())
        .unwrap()
        .address;
    // After the block, the pair's reserves equal its token balances.
    let (reserve0, reserve1, timestamp) =
        uniswap::unpack_reserves(storage_after(&workload, &output, pair, uniswap::RESERVES_SLOT));
    assert_eq!(timestamp as u64, lanes_workloads::env::TIMESTAMP);
    let token = |slot: u64| {
        address_at(
            &storage_after(&workload, &output, pair, U256::from(slot)).to_be_bytes::<32>(),
            0,
        )
    };
    let (token0, token1) = (token(6), token(7));
    assert_eq!(storage_after(&workload, &output, token0, erc20::balance_slot(pair)), reserve0);
    assert_eq!(storage_after(&workload, &output, token1, erc20::balance_slot(pair)), reserve1);
    let (before0, before1, _) = uniswap::unpack_reserves(
        workload.state.get(&pair).unwrap().storage[&uniswap::RESERVES_SLOT],
    );
    assert!(reserve0 * reserve1 > before0 * before1, "fees grow k");
}

/// Replays the CREATE2 scenarios on a model of the children and compares with the result.
fn check_create2(spec: SpecId) {
    let cancun = spec.is_enabled_in(SpecId::CANCUN);
    let workload = lanes_workloads::create2_selfdestruct(400, SEED, spec);
    assert_eq!(workload.block.context.spec, spec);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);

    let factory = to(workload
        .block
        .transactions
        .iter()
        .find(|t| selector_of(t) == selector("deploy(bytes32)"))
        .expect("a deploy"));
    // Model: child -> Some(counter) while it exists.
    let mut model: HashMap<Address, Option<U256>> = HashMap::new();
    let mut failed_redeploys = 0;
    let mut redeploys = 0;
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        let sel = selector_of(tx);
        let child = if to(tx) == factory {
            create2::child_address(factory, B256::from(word_at(&tx.data[4..], 0)))
        } else {
            to(tx)
        };
        let state = model.entry(child).or_insert_with(|| {
            workload
                .state
                .get(&child)
                .map(|a| a.storage.get(&create2::COUNTER_SLOT).copied().unwrap_or_default())
        });
        let deployed = |o: &lanes_executor::TxOutcome| address_at(&o.output, 0);
        let result = outcome(&output, i);
        if sel == selector("deploy(bytes32)") {
            if state.is_some() {
                failed_redeploys += 1;
                assert_eq!(deployed(result), Address::ZERO, "transaction {i}: collision");
            } else {
                assert_eq!(deployed(result), child, "transaction {i}: deployment");
                *state = Some(U256::from(1));
            }
            redeploys += 1;
        } else if sel == selector("deployAndDestroy(bytes32,address)") {
            assert_eq!(deployed(result), if state.is_some() { Address::ZERO } else { child });
        } else if sel == selector("destroy(address)") {
            if !cancun {
                *state = None;
            }
        } else if sel == selector("ping()") {
            if let Some(counter) = state {
                *counter += U256::from(1);
            }
        } else {
            panic!("unexpected call {tx:?}");
        }
    }
    for (child, expected) in &model {
        let exists = output
            .changes
            .accounts
            .get(child)
            .map_or(workload.state.get(child).is_some(), |c| c.info.is_some());
        assert_eq!(exists, expected.is_some(), "{child}: existence");
        if let Some(counter) = expected {
            assert_eq!(
                storage_after(&workload, &output, *child, create2::COUNTER_SLOT),
                *counter,
                "{child}: counter"
            );
        }
    }
    assert!(redeploys > 50);
    if cancun {
        assert!(failed_redeploys > 10, "EIP-6780 keeps destroyed-in-another-transaction children");
    } else {
        assert_eq!(failed_redeploys, 0, "before Cancun every SELFDESTRUCT deletes");
    }
    if !cancun {
        assert!(
            output.changes.accounts.values().any(|c| c.storage_cleared),
            "a pre-block child was wiped"
        );
    }
}

#[test]
fn create2_selfdestruct_shanghai() {
    check_create2(SpecId::SHANGHAI);
}

#[test]
fn create2_selfdestruct_cancun() {
    check_create2(SpecId::CANCUN);
}

#[test]
fn reverts_and_oog() {
    let workload = lanes_workloads::reverts_and_oog(700, SEED);
    let output = run_all_engines(&workload);
    let contract = to(&workload.block.transactions[0]);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        let result = outcome(&output, i);
        let sel = selector_of(tx);
        let kind = if sel == selector("touch()") && !tx.value.is_zero() {
            assert_eq!(result.status, TxStatus::Revert, "transaction {i}: value to non-payable");
            "value to non-payable"
        } else if sel == selector("touch()") && tx.gas_limit < 30_000 {
            assert!(
                matches!(result.status, TxStatus::Halt(HaltReason::OutOfGas(_))),
                "transaction {i}: {result:?}"
            );
            "starved"
        } else if sel == selector("touch()") {
            assert!(result.status.is_success(), "transaction {i}: {result:?}");
            "touch"
        } else if sel == selector("refuse(uint256)") {
            assert_eq!(result.status, TxStatus::Revert);
            assert_eq!(result.output[..4], selector("Refused(address,uint256)"));
            "custom error"
        } else if sel == selector("requireFalse()") {
            assert_eq!(result.status, TxStatus::Revert);
            assert_eq!(result.output[..4], selector("Error(string)"));
            "reason string"
        } else if sel == selector("burn()") {
            assert!(
                matches!(result.status, TxStatus::Halt(HaltReason::OutOfGas(_))),
                "transaction {i}: {result:?}"
            );
            assert_eq!(result.gas_used, tx.gas_limit);
            "burn"
        } else {
            assert_eq!(sel, selector("halt()"));
            assert_eq!(result.status, TxStatus::Halt(HaltReason::InvalidFEOpcode));
            assert_eq!(result.gas_used, tx.gas_limit);
            "invalid opcode"
        };
        *seen.entry(kind).or_default() += 1;
        assert!(result.logs.is_empty());
        // Failed or not, the sender paid for the gas (and only a success moves the value).
        let paid = effective_price(tx) * U256::from(result.gas_used);
        let moved = if result.status.is_success() { tx.value } else { U256::ZERO };
        assert_eq!(
            balance_after(&workload, &output, tx.caller),
            balance_before(&workload.state, tx.caller) - paid - moved
        );
        let hits = lanes_workloads::slots::address_mapping_slot(tx.caller, faulty::HITS_SLOT);
        let expected = if result.status.is_success() { U256::from(1) } else { U256::ZERO };
        assert_eq!(
            storage_after(&workload, &output, contract, hits),
            expected,
            "transaction {i}: hits"
        );
    }
    assert_eq!(seen.len(), 7, "every kind of failure is present: {seen:?}");
}

#[test]
fn beneficiary_read() {
    let workload = lanes_workloads::beneficiary_read(600, SEED);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    let mut expected = U256::from(BENEFICIARY_BALANCE);
    let mut probes = 0;
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        let result = outcome(&output, i);
        if selector_of(tx) == selector("probe()") {
            let seen = result
                .logs
                .iter()
                .find(|l| l.topics()[0] == coinbase_probe::seen_topic())
                .expect("Seen log");
            assert_eq!(seen.topics()[1], BENEFICIARY.into_word());
            assert_eq!(
                word_at(&seen.data.data, 0),
                expected,
                "transaction {i} saw the coinbase balance"
            );
            probes += 1;
        }
        expected += tip_paid(tx, BASE_FEE, result.gas_used);
        if to(tx) == BENEFICIARY || selector_of(tx) == selector("tip()") {
            expected += tx.value;
        }
    }
    assert!(probes >= 10, "{probes} probes");
    assert_eq!(balance_after(&workload, &output, BENEFICIARY), expected);
}

#[test]
fn eip7702() {
    let workload = lanes_workloads::eip7702(400, SEED);
    assert_eq!(workload.block.context.spec, SpecId::PRAGUE);
    let output = run_all_engines(&workload);
    assert_all_succeeded(&workload, &output);
    let mut authorities = HashSet::new();
    let mut self_sponsored = 0;
    for tx in &workload.block.transactions {
        for auth in &tx.authorization_list {
            let Either::Left(signed) = auth else { panic!("signed authorizations") };
            let authority = signed.recover_authority().expect("valid signature");
            authorities.insert(authority);
            if authority == tx.caller {
                self_sponsored += 1;
            }
        }
    }
    assert!(self_sponsored > 5, "{self_sponsored} self-sponsored authorizations");
    let delegate_address = workload
        .block
        .transactions
        .iter()
        .flat_map(|t| &t.authorization_list)
        .filter_map(|a| a.as_ref().left())
        .map(|s| s.inner().address)
        .find(|a| !a.is_zero())
        .expect("a delegation");
    let designator_hash = keccak256(delegate::designator(delegate_address));

    let mut executed: HashMap<Address, u64> = HashMap::new();
    let mut through_later_tx = 0;
    let mut pays = 0;
    for (i, tx) in workload.block.transactions.iter().enumerate() {
        for log in logs(&output.results[i]) {
            if log.topics()[0] == delegate::executed_topic() {
                assert!(
                    authorities.contains(&log.address),
                    "transaction {i}: Executed by a non-authority"
                );
                assert_eq!(log.topics()[1], log.address.into_word(), "address(this) is the EOA");
                assert_eq!(log.topics()[2], tx.caller.into_word());
                *executed.entry(log.address).or_default() += 1;
                if tx.authorization_list.is_empty() {
                    through_later_tx += 1;
                }
            }
        }
        if selector_of(tx) == selector("pay(address,uint256)") {
            let payee = address_at(&tx.data[4..], 0);
            assert_eq!(
                balance_after(&workload, &output, payee),
                word_at(&tx.data[4..], 1),
                "transaction {i}: pay"
            );
            *executed.entry(to(tx)).or_default() += 1;
            pays += 1;
        }
    }
    assert!(through_later_tx > 20, "{through_later_tx} calls through an earlier delegation");
    assert!(pays > 5);
    let mut delegated = 0;
    for authority in &authorities {
        let count = storage_after(&workload, &output, *authority, delegate::COUNT_SLOT);
        assert_eq!(
            count,
            U256::from(executed.get(authority).copied().unwrap_or_default()),
            "{authority}: count"
        );
        if let Some(info) = output.changes.accounts.get(authority).and_then(|c| c.info) {
            if info.code_hash == designator_hash {
                delegated += 1;
            }
        }
    }
    assert!(delegated > 20, "{delegated} accounts end delegated");
}

#[test]
fn hot_contention() {
    for share in [0.1, 0.3, 1.0] {
        let workload = lanes_workloads::hot_contention(500, SEED, share);
        let output = run_all_engines(&workload);
        assert_all_succeeded(&workload, &output);
        let contract = to(&workload.block.transactions[0]);
        let mut hits = 0u64;
        for (i, tx) in workload.block.transactions.iter().enumerate() {
            if selector_of(tx) == selector("hit()") {
                hits += 1;
                let log = &outcome(&output, i).logs[0];
                assert_eq!(log.topics()[0], counter::hit_topic());
                assert_eq!(
                    word_at(&log.data.data, 0),
                    U256::from(hits),
                    "transaction {i} saw every earlier hit"
                );
            } else {
                let slot = counter::per_sender_slot(tx.caller);
                assert_eq!(storage_after(&workload, &output, contract, slot), U256::from(1));
            }
        }
        assert_eq!(hits, (share * 500.0).round() as u64);
        assert_eq!(
            storage_after(&workload, &output, contract, counter::HOT_SLOT),
            U256::from(hits)
        );
    }
}

#[test]
fn standard_suite_small() {
    let suite = lanes_workloads::standard(60, 7);
    assert_eq!(suite.len(), 14);
    for workload in &suite {
        assert_eq!(workload.len(), 60, "{}", workload.name);
        run_all_engines(workload);
    }
}

#[test]
fn generators_are_deterministic() {
    for (a, b) in
        lanes_workloads::standard(40, 11).iter().zip(lanes_workloads::standard(40, 11).iter())
    {
        assert_eq!(a.name, b.name);
        assert_eq!(a.block.transactions, b.block.transactions, "{}", a.name);
        assert_eq!(a.state.state_root(), b.state.state_root(), "{}", a.name);
    }
    let (a, b) = (lanes_workloads::erc20(40, 1), lanes_workloads::erc20(40, 2));
    assert_ne!(a.block.transactions, b.block.transactions);
    let (a, b) = (lanes_workloads::mixed(80, 5), lanes_workloads::mixed(80, 5));
    assert_eq!(a.block.transactions, b.block.transactions);
    assert_eq!(a.state.state_root(), b.state.state_root());
}
