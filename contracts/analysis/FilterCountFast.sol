// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// FilterCountPlain's analysis through the enclave's precompiles: same output, byte for byte.
contract FilterCountFast {
    uint256 internal constant COLUMN = 1;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        // 500 <= value <= 899
        return FastLib.call(FastLib.COUNT_IN_RANGE, FastLib.encodeColumns(inputs, FastLib.one(COLUMN), FastLib.two(500, 899)));
    }
}
