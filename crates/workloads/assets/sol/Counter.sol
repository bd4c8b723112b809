// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// One hot storage slot everybody increments, and one slot per sender.
contract Counter {
    event Hit(address indexed sender, uint256 value);

    uint256 public hot;
    mapping(address => uint256) public perSender;

    /// Increments the shared slot and logs its new value.
    function hit() external {
        hot += 1;
        emit Hit(msg.sender, hot);
    }

    /// Increments the sender's own slot.
    function bump() external {
        perSender[msg.sender] += 1;
    }
}
