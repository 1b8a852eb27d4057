// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// HistogramPlain's analysis through the enclave's precompiles: same output, byte for byte.
contract HistogramFast {
    uint256 internal constant COLUMN = 1;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        uint256[] memory args = new uint256[](3);
        args[0] = 0;   // lo
        args[1] = 100; // width
        args[2] = 10;  // buckets
        return FastLib.call(FastLib.HISTOGRAM, FastLib.withArgs(FastLib.column(inputs, COLUMN), args));
    }
}
