// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Plain-EVM CSV scanning for the analysis contracts' "Plain" builds: byte by byte, no precompiles.
/// Records end with '\n' ('\r' is ignored), fields are split by ',', a field is an optional '-'
/// followed by decimal digits. The first line of each input is a header and is skipped; empty
/// lines are skipped. Same rules as the enclave's csvColumn precompile with decimals = 0.
library CsvPlain {
    error NotANumber(uint256 position);
    error MissingColumn(uint256 position);

    /// Position just after the first '\n' at or after `pos` (or the end).
    function skipLine(bytes calldata d, uint256 pos) internal pure returns (uint256) {
        uint256 n = d.length;
        unchecked {
            while (pos < n && d[pos] != 0x0a) pos++;
            return pos < n ? pos + 1 : n;
        }
    }

    /// Reads the record starting at `pos`: the values of columns `colA` and `colB` and the position
    /// after the record's newline. `empty` is true for an empty line.
    function record(bytes calldata d, uint256 pos, uint256 colA, uint256 colB)
        internal pure returns (int256 a, int256 b, uint256 next, bool empty)
    {
        if (pos < d.length && (d[pos] == 0x0a || d[pos] == 0x0d)) {
            while (pos < d.length && d[pos] == 0x0d) pos++;
            if (pos >= d.length || d[pos] == 0x0a) return (0, 0, pos + 1, true);
        }
        uint256 last = colA > colB ? colA : colB;
        uint256 col = 0;
        uint8 term;
        while (true) {
            if (col == colA || col == colB) {
                int256 v;
                (v, pos, term) = number(d, pos);
                if (col == colA) a = v;
                if (col == colB) b = v;
            } else {
                (pos, term) = skipField(d, pos);
            }
            if (term != 0x2c) break;
            col++;
        }
        if (col < last) revert MissingColumn(pos);
        return (a, b, pos, false);
    }

    /// Parses [-]digits up to ',' or the end of the line; returns the value, the position after
    /// the terminator and the terminator (',' or '\n'; '\n' also at the end of the input).
    function number(bytes calldata d, uint256 pos) internal pure returns (int256 v, uint256 next, uint8 term) {
        bool neg = false;
        bool digits = false;
        term = 0x0a;
        unchecked {
            while (pos < d.length) {
                uint8 c = uint8(d[pos]);
                pos++;
                if (c == 0x2c || c == 0x0a) { term = c; break; }
                if (c == 0x0d) continue;
                if (c == 0x2d && !digits && !neg) { neg = true; continue; }
                c -= 48;
                if (c > 9) revert NotANumber(pos);
                v = v * 10 + int256(uint256(c));
                digits = true;
            }
        }
        if (!digits) revert NotANumber(pos);
        return (neg ? -v : v, pos, term);
    }

    function skipField(bytes calldata d, uint256 pos) internal pure returns (uint256 next, uint8 term) {
        unchecked {
            while (pos < d.length) {
                uint8 c = uint8(d[pos]);
                pos++;
                if (c == 0x2c || c == 0x0a) return (pos, c);
            }
        }
        return (pos, 0x0a);
    }
}
