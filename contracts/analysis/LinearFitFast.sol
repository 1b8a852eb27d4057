// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// LinearFitPlain's analysis through the enclave's precompiles: same output, byte for byte.
contract LinearFitFast {
    uint256 internal constant X = 2;
    uint256 internal constant Y = 3;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        return FastLib.call(FastLib.LINEAR_FIT, FastLib.encodeColumns(inputs, FastLib.two(X, Y), FastLib.none()));
    }
}
