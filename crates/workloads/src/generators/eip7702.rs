//! EIP-7702: EOAs delegating to a contract, then being called through the delegation.

use super::name;
use crate::{
    builder::BlockBuilder,
    contracts::delegate,
    env::{CHAIN_ID, ETHER},
    keys::Key,
    Workload,
};
use alloy_primitives::{Address, Bytes, U256};
use lanes_executor::revm::primitives::hardfork::SpecId;
use rand::Rng;
use std::collections::VecDeque;

/// One transaction of a scenario; nonces are decided when it is pushed.
#[derive(Clone, Debug)]
enum Step {
    /// A type-4 transaction carrying `key`'s authorization to delegate to `target`. Sent by a
    /// new sponsor, or by the authority itself (then the authorization's nonce is the
    /// sender's nonce plus one). With `bad_nonce`, the authorization's nonce is wrong, so it
    /// is skipped while the transaction still runs.
    Authorize {
        key: usize,
        self_sponsored: bool,
        target: Address,
        to: Option<Address>,
        data: Bytes,
        bad_nonce: bool,
    },
    /// A call to `key`'s account by a new sender.
    CallAuthority { key: usize, data: Bytes, value: U256 },
    /// A plain transfer sent by `key`'s account itself.
    SendFromAuthority { key: usize, value: U256 },
}

/// `size` transactions (Prague) playing interleaved EIP-7702 scenarios, each with its own
/// authority (a key whose account may or may not exist) delegating to one `Delegate` contract:
///
/// 1. a sponsor's type-4 transaction (calling elsewhere) delegates the authority; later
///    transactions call `execute()` through it and send it ether (its `receive()` runs);
/// 2. the sponsor's transaction delegates and calls `execute()` on the authority at once; a
///    later transaction calls `execute()` again;
/// 3. self-sponsored: the authority sends the type-4 transaction to itself, calling
///    `pay(to, amount)` (allowed only to the account itself); later, someone calls `execute()`
///    and the delegated authority sends a plain transaction;
/// 4. delegation, a call through it, revocation (delegation to the zero address), and a call
///    that no longer runs any code;
/// 5. an authorization with a wrong nonce: skipped, so the following call runs no code.
pub fn eip7702(size: usize, seed: u64) -> Workload {
    let mut builder = BlockBuilder::new(SpecId::PRAGUE, seed);
    let target = delegate::install(&mut builder);
    let mut keys: Vec<Key> = Vec::new();
    let mut scenarios: Vec<VecDeque<Step>> = Vec::new();
    let mut steps = 0;
    while steps < size {
        let key = keys.len();
        keys.push(Key::derive(seed, key as u64));
        let authority = keys[key].address();
        let kind = builder.rng().random_range(0..5);
        if kind == 2 || builder.rng().random_bool(0.5) {
            builder.fund(authority, U256::from(10 * ETHER));
            let nonce = builder.rng().random_range(0..5);
            builder.set_nonce(authority, nonce);
        }
        let execute = |value| Step::CallAuthority { key, data: delegate::execute(), value };
        let authorize = |to, data| Step::Authorize {
            key,
            self_sponsored: false,
            target,
            to,
            data,
            bad_nonce: false,
        };
        let scenario: VecDeque<Step> = match kind {
            0 => {
                let elsewhere = builder.fresh_address();
                let value = builder.random_milli_ether(1, 10);
                [
                    authorize(Some(elsewhere), Bytes::new()),
                    execute(U256::ZERO),
                    Step::CallAuthority { key, data: Bytes::new(), value },
                ]
                .into()
            }
            1 => [authorize(None, delegate::execute()), execute(builder.random_milli_ether(0, 5))]
                .into(),
            2 => {
                let payee = builder.fresh_address();
                let amount = builder.random_milli_ether(1, 1_000);
                let value = builder.random_milli_ether(1, 100);
                [
                    Step::Authorize {
                        key,
                        self_sponsored: true,
                        target,
                        to: None,
                        data: delegate::pay(payee, amount),
                        bad_nonce: false,
                    },
                    execute(U256::ZERO),
                    Step::SendFromAuthority { key, value },
                ]
                .into()
            }
            3 => {
                let elsewhere = builder.fresh_address();
                [
                    authorize(None, delegate::execute()),
                    execute(U256::ZERO),
                    Step::Authorize {
                        key,
                        self_sponsored: false,
                        target: Address::ZERO,
                        to: Some(elsewhere),
                        data: Bytes::new(),
                        bad_nonce: false,
                    },
                    execute(U256::ZERO),
                ]
                .into()
            }
            _ => [
                Step::Authorize {
                    key,
                    self_sponsored: false,
                    target,
                    to: None,
                    data: delegate::execute(),
                    bad_nonce: true,
                },
                execute(U256::ZERO),
            ]
            .into(),
        };
        steps += scenario.len();
        scenarios.push(scenario);
    }
    for _ in 0..size {
        let live: Vec<usize> = (0..scenarios.len()).filter(|&i| !scenarios[i].is_empty()).collect();
        let pick = live[builder.rng().random_range(0..live.len())];
        let step = scenarios[pick].pop_front().expect("live scenario");
        push_step(&mut builder, &keys, step);
    }
    builder.finish(name("eip7702", size, seed))
}

/// Pushes the transaction of `step`.
fn push_step(builder: &mut BlockBuilder, keys: &[Key], step: Step) {
    match step {
        Step::Authorize { key, self_sponsored, target, to, data, bad_nonce } => {
            let authority = keys[key].address();
            let sender = if self_sponsored { authority } else { builder.eoa() };
            let mut nonce = builder.next_nonce(authority) + u64::from(self_sponsored);
            if bad_nonce {
                nonce += 1 + builder.rng().random_range(0..3);
            }
            let chain_id = if builder.rng().random_bool(0.8) { CHAIN_ID } else { 0 };
            let authorization = keys[key].authorize(chain_id, target, nonce);
            let tx = builder.new_tx_7702(
                sender,
                to.unwrap_or(authority),
                data,
                delegate::AUTHORIZING_GAS,
                vec![authorization],
            );
            builder.push(tx);
        }
        Step::CallAuthority { key, data, value } => {
            let sender = builder.eoa();
            let tx = builder.new_tx(sender, keys[key].address(), value, data, delegate::CALL_GAS);
            builder.push(tx);
        }
        Step::SendFromAuthority { key, value } => {
            let to = builder.fresh_address();
            let tx = builder.new_tx(keys[key].address(), to, value, Bytes::new(), 21_000);
            builder.push(tx);
        }
    }
}
