//! The compiled contracts of `assets/`, decoded once per process.
//!
//! Each file holds runtime (deployed) bytecode as hex; `assets/README.md` says where each one
//! comes from and how to regenerate it.

use alloy_primitives::{hex, keccak256, Address, B256};
use lanes_state::Bytecode;
use std::sync::OnceLock;

/// A contract's runtime code and its hash.
#[derive(Clone, Debug)]
pub struct Code {
    /// The code.
    pub bytecode: Bytecode,
    /// keccak256 of the code.
    pub hash: B256,
}

impl Code {
    /// Code of raw bytes (a hand-assembled contract).
    pub fn new(bytes: Vec<u8>) -> Self {
        let hash = keccak256(&bytes);
        Self { bytecode: Bytecode::new_raw(bytes.into()), hash }
    }

    fn from_hex(name: &str, text: &str) -> Self {
        let bytes = hex::decode(text.trim())
            .unwrap_or_else(|e| panic!("assets/{name} is not valid hex: {e}"));
        assert!(!bytes.is_empty(), "assets/{name} is empty");
        Self::new(bytes)
    }
}

macro_rules! asset {
    ($(#[$doc:meta])* $fn_name:ident, $file:literal) => {
        $(#[$doc])*
        pub fn $fn_name() -> &'static Code {
            static CODE: OnceLock<Code> = OnceLock::new();
            CODE.get_or_init(|| {
                Code::from_hex($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $file)))
            })
        }
    };
}

asset!(
    /// OpenZeppelin Contracts 4.9.6 `ERC20PresetFixedSupply`.
    erc20,
    "oz_erc20_preset_fixed_supply.runtime.hex"
);
asset!(
    /// Uniswap V2 core 1.0.1 `UniswapV2Pair`.
    uniswap_v2_pair,
    "uniswap_v2_pair.runtime.hex"
);
asset!(
    /// Uniswap V2 core 1.0.1 `UniswapV2Factory`.
    uniswap_v2_factory,
    "uniswap_v2_factory.runtime.hex"
);
asset!(
    /// Our `Create2Factory` (assets/sol/Create2Factory.sol).
    create2_factory,
    "create2_factory.runtime.hex"
);
asset!(
    /// Our `Child`, the contract `Create2Factory` deploys (assets/sol/Create2Factory.sol).
    child,
    "child.runtime.hex"
);
asset!(
    /// Our `Faulty` (assets/sol/Faulty.sol).
    faulty,
    "faulty.runtime.hex"
);
asset!(
    /// Our `CoinbaseProbe` (assets/sol/CoinbaseProbe.sol).
    coinbase_probe,
    "coinbase_probe.runtime.hex"
);
asset!(
    /// Our `Delegate`, an EIP-7702 delegation target (assets/sol/Delegate.sol).
    delegate,
    "delegate.runtime.hex"
);
asset!(
    /// Our `Counter` (assets/sol/Counter.sol).
    counter,
    "counter.runtime.hex"
);

/// keccak256 of `Child`'s creation code: what its CREATE2 addresses are derived from.
pub fn child_init_code_hash() -> B256 {
    static HASH: OnceLock<B256> = OnceLock::new();
    *HASH.get_or_init(|| {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/child.initcode.hex"));
        keccak256(hex::decode(text.trim()).expect("assets/child.initcode.hex is not valid hex"))
    })
}

/// Uniswap V2 periphery 1.1.0-beta.0 `UniswapV2Router02` with its immutables `factory` and
/// `WETH` filled in, as its constructor would have done.
pub fn uniswap_v2_router02(factory: Address, weth: Address) -> Code {
    static TEMPLATE: OnceLock<(Vec<u8>, Vec<usize>, Vec<usize>)> = OnceLock::new();
    let (template, factory_at, weth_at) = TEMPLATE.get_or_init(|| {
        let code = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/uniswap_v2_router02.runtime.hex"
        ));
        let code = hex::decode(code.trim()).expect("assets/uniswap_v2_router02 is not valid hex");
        let offsets = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/uniswap_v2_router02.immutables.txt"
        ));
        let mut factory_at = Vec::new();
        let mut weth_at = Vec::new();
        for line in offsets.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let list = match words.next() {
                Some("factory") => &mut factory_at,
                Some("weth") => &mut weth_at,
                other => panic!("unexpected immutable {other:?} in the router's list"),
            };
            list.extend(words.map(|w| w.parse::<usize>().expect("immutable offset")));
        }
        (code, factory_at, weth_at)
    });
    let mut code = template.clone();
    for (offsets, address) in [(factory_at, factory), (weth_at, weth)] {
        for &at in offsets {
            let slot = &mut code[at..at + 32];
            assert!(slot.iter().all(|b| *b == 0), "immutable placeholder at {at} is not zero");
            slot.copy_from_slice(address.into_word().as_slice());
        }
    }
    let hash = keccak256(&code);
    Code { bytecode: Bytecode::new_raw(code.into()), hash }
}
