// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FastLib} from "./FastLib.sol";

/// MedianPlain's analysis through the enclave's sort precompile: same output, byte for byte.
contract MedianFast {
    uint256 internal constant COLUMN = 1;
    int256 internal constant SCALE = 1e6;

    function analyze(bytes[] calldata inputs) external view returns (bytes memory) {
        bytes memory sorted = FastLib.call(FastLib.SORT, FastLib.encodeColumns(inputs, FastLib.one(COLUMN), FastLib.none()));
        uint256 n;
        assembly { n := mload(add(sorted, 64)) }
        if (n == 0) return abi.encode(uint256(0), int256(0));
        int256 lower;
        int256 upper;
        uint256 hi = n / 2;
        uint256 lo = n % 2 == 1 ? hi : hi - 1;
        assembly {
            lower := mload(add(sorted, add(96, mul(32, lo))))
            upper := mload(add(sorted, add(96, mul(32, hi))))
        }
        int256 median = n % 2 == 1 ? upper * SCALE : (lower + upper) * SCALE / 2;
        return abi.encode(n, median);
    }
}
