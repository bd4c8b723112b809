//! OpenZeppelin Contracts 4.9.6 `ERC20PresetFixedSupply`: a plain ERC-20 token.
//!
//! Storage layout (`ERC20` of OpenZeppelin 4.x; `Context`, `ERC20Burnable` and the preset add
//! no state variables):
//!
//! | slot | variable |
//! |---|---|
//! | 0 | `mapping(address => uint256) _balances` |
//! | 1 | `mapping(address => mapping(address => uint256)) _allowances` |
//! | 2 | `uint256 _totalSupply` |
//! | 3 | `string _name` (short string) |
//! | 4 | `string _symbol` (short string) |
//!
//! `decimals()` is the constant 18.

use crate::{
    abi::{event_topic, Calldata},
    assets,
    builder::BlockBuilder,
    slots::{address_mapping_slot, nested_mapping_slot, short_string},
};
use alloy_primitives::{Address, Bytes, B256, U256};

/// Slot of `_balances`.
pub const BALANCES_SLOT: U256 = U256::ZERO;
/// Slot of `_allowances`.
pub const ALLOWANCES_SLOT: U256 = U256::from_limbs([1, 0, 0, 0]);
/// Slot of `_totalSupply`.
pub const TOTAL_SUPPLY_SLOT: U256 = U256::from_limbs([2, 0, 0, 0]);
/// Slot of `_name`.
pub const NAME_SLOT: U256 = U256::from_limbs([3, 0, 0, 0]);
/// Slot of `_symbol`.
pub const SYMBOL_SLOT: U256 = U256::from_limbs([4, 0, 0, 0]);
/// A generous gas limit for `transfer` (it uses about 35,000 to 55,000).
pub const TRANSFER_GAS: u64 = 100_000;
/// One token (18 decimals).
pub const UNIT: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// Installs a token named `name` (`symbol`) with no holders yet.
pub fn install(builder: &mut BlockBuilder, name: &str, symbol: &str) -> Address {
    let token = builder.install(assets::erc20(), 1, U256::ZERO);
    builder.set_storage(token, NAME_SLOT, short_string(name));
    builder.set_storage(token, SYMBOL_SLOT, short_string(symbol));
    token
}

/// Adds `amount` to the balance of `holder` and to the total supply, in the pre-state.
pub fn mint(builder: &mut BlockBuilder, token: Address, holder: Address, amount: U256) {
    let slot = balance_slot(holder);
    let balance = builder.storage(token, slot) + amount;
    builder.set_storage(token, slot, balance);
    let supply = builder.storage(token, TOTAL_SUPPLY_SLOT) + amount;
    builder.set_storage(token, TOTAL_SUPPLY_SLOT, supply);
}

/// Sets the allowance of `spender` over the tokens of `owner`, in the pre-state.
pub fn approve(
    builder: &mut BlockBuilder,
    token: Address,
    owner: Address,
    spender: Address,
    amount: U256,
) {
    builder.set_storage(token, allowance_slot(owner, spender), amount);
}

/// The slot of `_balances[holder]`.
pub fn balance_slot(holder: Address) -> U256 {
    address_mapping_slot(holder, BALANCES_SLOT)
}

/// The slot of `_allowances[owner][spender]`.
pub fn allowance_slot(owner: Address, spender: Address) -> U256 {
    nested_mapping_slot(owner, spender, ALLOWANCES_SLOT)
}

/// Calldata of `transfer(to, amount)`.
pub fn transfer(to: Address, amount: U256) -> Bytes {
    Calldata::new("transfer(address,uint256)").address(to).uint(amount).build()
}

/// Calldata of `balanceOf(holder)`.
pub fn balance_of(holder: Address) -> Bytes {
    Calldata::new("balanceOf(address)").address(holder).build()
}

/// Topic of `Transfer(address indexed from, address indexed to, uint256 value)`.
pub fn transfer_topic() -> B256 {
    event_topic("Transfer(address,address,uint256)")
}
