// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CsvPlain} from "./CsvPlain.sol";

/// Least-squares line y = slope * x + intercept over columns 2 ("x") and 3 ("y") of every input.
/// Returns abi.encode(uint256 n, int256 slope, int256 intercept), slope and intercept scaled by 1e6:
/// slope = (nSxy - SxSy) * 1e6 / (nSxx - Sx^2), intercept = (Sy * 1e6 - slope * Sx) / n, divisions
/// truncating toward zero; both 0 when n < 2 or every x is equal.
contract LinearFitPlain {
    uint256 internal constant X = 2;
    uint256 internal constant Y = 3;
    int256 internal constant SCALE = 1e6;

    function analyze(bytes[] calldata inputs) external pure returns (bytes memory) {
        int256 n;
        int256 sx;
        int256 sy;
        int256 sxx;
        int256 sxy;
        for (uint256 k = 0; k < inputs.length; k++) {
            bytes calldata d = inputs[k];
            uint256 pos = CsvPlain.skipLine(d, 0);
            while (pos < d.length) {
                (int256 x, int256 y, uint256 next, bool empty) = CsvPlain.record(d, pos, X, Y);
                pos = next;
                if (empty) continue;
                n++;
                sx += x;
                sy += y;
                sxx += x * x;
                sxy += x * y;
            }
        }
        int256 den = n * sxx - sx * sx;
        if (n < 2 || den == 0) return abi.encode(uint256(n), int256(0), int256(0));
        int256 slope = (n * sxy - sx * sy) * SCALE / den;
        int256 intercept = (sy * SCALE - slope * sx) / n;
        return abi.encode(uint256(n), slope, intercept);
    }
}
