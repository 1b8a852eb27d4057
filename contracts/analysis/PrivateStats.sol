// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PrivateLib} from "./PrivateLib.sol";

/// A private analysis of the sample layout `id,value,x,y` (enclave/examples.ts): it never reads a record, only the
/// private precompiles' noisy answers, and spends exactly 1 epsilon in all, so it runs on any dataset whose sellers
/// open columns 1 (value), 2 (x) and 3 (y) to private analyses for a trade of 1 epsilon.
/// Output: abi.encode(int256 count, int256 mean, int256[] histogram, int256 median, int256 n, int256 slope, int256 intercept).
contract PrivateStats {
    uint256 internal constant VALUE = 1;
    uint256 internal constant X = 2;
    uint256 internal constant Y = 3;

    function analyze(bytes[] calldata) external view returns (bytes memory) {
        int256 count = PrivateLib.count(VALUE, 100_000);
        (int256 mean,) = PrivateLib.mean(VALUE, 200_000);
        int256[] memory hist = PrivateLib.histogram(VALUE, 0, 100, 10, 200_000);
        int256 median = PrivateLib.quantile(VALUE, 500_000, 0, 10, 111, 200_000);
        (int256 n, int256 slope, int256 intercept) = PrivateLib.linearFit(X, Y, 300_000);
        return abi.encode(count, mean, hist, median, n, slope, intercept);
    }
}
