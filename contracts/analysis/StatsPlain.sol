// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CsvPlain} from "./CsvPlain.sol";

/// count, sum, min, max, mean and population variance of column 1 ("value") of every input.
/// Returns abi.encode(uint256 count, int256 sum, int256 min, int256 max, int256 mean, int256 variance),
/// mean and variance scaled by 1e6, divisions truncating toward zero. Plain EVM build.
contract StatsPlain {
    uint256 internal constant COLUMN = 1;
    int256 internal constant SCALE = 1e6;

    function analyze(bytes[] calldata inputs) external pure returns (bytes memory) {
        int256 count;
        int256 sum;
        int256 sumSq;
        int256 min = type(int256).max;
        int256 max = type(int256).min;
        for (uint256 k = 0; k < inputs.length; k++) {
            bytes calldata d = inputs[k];
            uint256 pos = CsvPlain.skipLine(d, 0);
            while (pos < d.length) {
                (int256 v,, uint256 next, bool empty) = CsvPlain.record(d, pos, COLUMN, COLUMN);
                pos = next;
                if (empty) continue;
                count++;
                sum += v;
                sumSq += v * v;
                if (v < min) min = v;
                if (v > max) max = v;
            }
        }
        if (count == 0) return abi.encode(uint256(0), int256(0), int256(0), int256(0), int256(0), int256(0));
        int256 mean = sum * SCALE / count;
        int256 variance = (count * sumSq - sum * sum) * SCALE / (count * count);
        return abi.encode(uint256(count), sum, min, max, mean, variance);
    }
}
