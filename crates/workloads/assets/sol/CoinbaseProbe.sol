// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// Reads and pays the block's beneficiary (coinbase).
contract CoinbaseProbe {
    event Seen(address indexed coinbase, uint256 balance);

    uint256 public lastSeen;

    /// Reads the coinbase's balance with BALANCE, stores it and logs it.
    function probe() external returns (uint256 balance) {
        balance = block.coinbase.balance;
        lastSeen = balance;
        emit Seen(block.coinbase, balance);
    }

    /// Forwards the value sent to the coinbase.
    function tip() external payable {
        payable(block.coinbase).transfer(msg.value);
    }
}
