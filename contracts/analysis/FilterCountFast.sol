// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// FilterCountPlain's analysis through the enclave's fused csvCountInRange precompile: same output, byte for byte.
contract FilterCountFast {
    uint256 internal constant COLUMN = 1;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        // 500 <= value <= 899
        return FastLib.call(
            FastLib.CSV_COUNT_IN_RANGE, FastLib.withInputs(inputs, FastLib.five(COLUMN, 0, FastLib.SKIP_HEADER, 500, 899))
        );
    }
}
