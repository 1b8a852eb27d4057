// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CsvPlain} from "./CsvPlain.sol";

/// How many records of every input have column 1 ("value") between 500 and 899 inclusive.
/// Returns abi.encode(uint256 count).
contract FilterCountPlain {
    uint256 internal constant COLUMN = 1;
    int256 internal constant LO = 500;
    int256 internal constant HI = 899;

    function analyze(bytes[] calldata inputs) external pure returns (bytes memory) {
        uint256 count;
        for (uint256 k = 0; k < inputs.length; k++) {
            bytes calldata d = inputs[k];
            uint256 pos = CsvPlain.skipLine(d, 0);
            while (pos < d.length) {
                (int256 v,, uint256 next, bool empty) = CsvPlain.record(d, pos, COLUMN, COLUMN);
                pos = next;
                if (!empty && v >= LO && v <= HI) count++;
            }
        }
        return abi.encode(count);
    }
}
