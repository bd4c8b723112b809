// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// Functions that fail in the different ways a transaction can fail. Each writes storage
/// first, so that a failure has something to undo.
contract Faulty {
    mapping(address => uint256) public hits;

    error Refused(address sender, uint256 value);

    /// Succeeds: counts the call.
    function touch() external {
        hits[msg.sender] += 1;
    }

    /// Writes, then REVERTs with a custom error.
    function refuse(uint256 value) external {
        hits[msg.sender] += value;
        revert Refused(msg.sender, value);
    }

    /// Writes, then fails a `require` (REVERT with an `Error(string)` reason).
    function requireFalse() external {
        hits[msg.sender] += 1;
        require(hits[msg.sender] == 0, "Faulty: require failed");
    }

    /// Writes fresh slots until the transaction runs out of gas.
    function burn() external {
        uint256 i = hits[msg.sender];
        while (true) {
            i += 1;
            hits[address(uint160(uint256(keccak256(abi.encode(msg.sender, i)))))] = i;
        }
    }

    /// Writes, then executes the INVALID opcode (an exceptional halt).
    function halt() external {
        hits[msg.sender] += 1;
        assembly {
            invalid()
        }
    }
}
