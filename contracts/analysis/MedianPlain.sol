// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CsvPlain} from "./CsvPlain.sol";

/// Median of column 1 ("value") of every input, by heapsort in EVM memory. Returns
/// abi.encode(uint256 n, int256 median) with the median scaled by 1e6: the middle value for odd n,
/// (lower + upper) * 1e6 / 2 truncated toward zero for even n, 0 when n = 0. Plain EVM build.
contract MedianPlain {
    uint256 internal constant COLUMN = 1;
    int256 internal constant SCALE = 1e6;

    function analyze(bytes[] calldata inputs) external pure returns (bytes memory) {
        uint256 n = 0;
        for (uint256 k = 0; k < inputs.length; k++) n += _count(inputs[k]);
        int256[] memory v = new int256[](n);
        uint256 i = 0;
        for (uint256 k = 0; k < inputs.length; k++) {
            bytes calldata d = inputs[k];
            uint256 pos = CsvPlain.skipLine(d, 0);
            while (pos < d.length) {
                (int256 x,, uint256 next, bool empty) = CsvPlain.record(d, pos, COLUMN, COLUMN);
                pos = next;
                if (!empty) v[i++] = x;
            }
        }
        _sort(v);
        if (n == 0) return abi.encode(uint256(0), int256(0));
        int256 median = n % 2 == 1 ? v[n / 2] * SCALE : (v[n / 2 - 1] + v[n / 2]) * SCALE / 2;
        return abi.encode(n, median);
    }

    function _count(bytes calldata d) private pure returns (uint256 n) {
        uint256 pos = CsvPlain.skipLine(d, 0);
        while (pos < d.length) {
            (,, uint256 next, bool empty) = CsvPlain.record(d, pos, COLUMN, COLUMN);
            pos = next;
            if (!empty) n++;
        }
    }

    function _sort(int256[] memory a) private pure {
        uint256 n = a.length;
        if (n < 2) return;
        unchecked {
            for (uint256 start = n / 2; start > 0; start--) _sift(a, start - 1, n);
            for (uint256 end = n - 1; end > 0; end--) {
                (a[0], a[end]) = (a[end], a[0]);
                _sift(a, 0, end);
            }
        }
    }

    function _sift(int256[] memory a, uint256 root, uint256 end) private pure {
        unchecked {
            while (true) {
                uint256 child = 2 * root + 1;
                if (child >= end) return;
                if (child + 1 < end && a[child] < a[child + 1]) child++;
                if (a[root] >= a[child]) return;
                (a[root], a[child]) = (a[child], a[root]);
                root = child;
            }
        }
    }
}
