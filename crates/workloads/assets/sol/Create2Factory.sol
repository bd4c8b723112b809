// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.28;

/// A small contract deployed with CREATE2: counts calls in storage and can self-destruct.
contract Child {
    uint256 public counter;

    constructor() payable {
        counter = 1;
    }

    /// Increments the counter and returns it.
    function ping() external returns (uint256) {
        counter += 1;
        return counter;
    }

    /// SELFDESTRUCTs, sending the balance to `to`.
    function destroy(address payable to) external {
        selfdestruct(to);
    }
}

/// Deploys `Child` at deterministic addresses with CREATE2.
contract Create2Factory {
    event Deployed(bytes32 indexed salt, address child);
    event Destroyed(bytes32 indexed salt, address child);

    /// CREATE2-deploys a `Child` with `salt` (forwarding the value). Returns address(0),
    /// without reverting, when the address is taken.
    function deploy(bytes32 salt) public payable returns (address child) {
        bytes memory code = type(Child).creationCode;
        assembly {
            child := create2(callvalue(), add(code, 0x20), mload(code), salt)
        }
        emit Deployed(salt, child);
    }

    /// Deploys a `Child` and makes it SELFDESTRUCT in the same transaction (so that even under
    /// EIP-6780 the account is deleted).
    function deployAndDestroy(bytes32 salt, address payable to) external payable returns (address child) {
        child = deploy(salt);
        if (child != address(0)) {
            Child(child).destroy(to);
            emit Destroyed(salt, child);
        }
    }
}
