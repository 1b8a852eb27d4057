// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CsvPlain} from "./CsvPlain.sol";

/// Histogram of column 1 ("value") of every input: 10 buckets of width 100 from 0; values below 0
/// count in the first bucket, values of 1000 and above in the last. Returns abi.encode(uint256[] counts).
contract HistogramPlain {
    uint256 internal constant COLUMN = 1;
    int256 internal constant LO = 0;
    int256 internal constant WIDTH = 100;
    uint256 internal constant BUCKETS = 10;

    function analyze(bytes[] calldata inputs) external pure returns (bytes memory) {
        uint256[] memory counts = new uint256[](BUCKETS);
        for (uint256 k = 0; k < inputs.length; k++) {
            bytes calldata d = inputs[k];
            uint256 pos = CsvPlain.skipLine(d, 0);
            while (pos < d.length) {
                (int256 v,, uint256 next, bool empty) = CsvPlain.record(d, pos, COLUMN, COLUMN);
                pos = next;
                if (empty) continue;
                uint256 b = v < LO ? 0 : uint256((v - LO) / WIDTH);
                if (b >= BUCKETS) b = BUCKETS - 1;
                counts[b]++;
            }
        }
        return abi.encode(counts);
    }
}
