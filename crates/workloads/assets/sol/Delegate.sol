// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// Code an EOA delegates to with EIP-7702: it runs in the EOA's context (its storage, its
/// balance, `address(this)` is the EOA).
contract Delegate {
    event Executed(address indexed account, address indexed caller, uint256 value, uint256 count);
    event Received(address indexed account, address indexed from, uint256 value);

    uint256 public count;

    /// Counts the call in the account's storage and logs who ran it where.
    function execute() external payable returns (uint256) {
        count += 1;
        emit Executed(address(this), msg.sender, msg.value, count);
        return count;
    }

    /// Sends `amount` of the account's ether to `to`; only the account itself may ask.
    function pay(address payable to, uint256 amount) external {
        require(msg.sender == address(this), "Delegate: not the account");
        count += 1;
        to.transfer(amount);
    }

    receive() external payable {
        emit Received(address(this), msg.sender, msg.value);
    }
}
