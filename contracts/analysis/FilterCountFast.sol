// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// FilterCountPlain's analysis through the enclave's precompiles: same output, byte for byte.
contract FilterCountFast {
    uint256 internal constant COLUMN = 1;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        uint256[] memory args = new uint256[](2);
        args[0] = 500; // lo, inclusive
        args[1] = 899; // hi, inclusive
        return FastLib.call(FastLib.COUNT_IN_RANGE, FastLib.withArgs(FastLib.column(inputs, COLUMN), args));
    }
}
