// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Helpers of the analysis contracts' "Fast" builds: calls to the enclave's analytics precompiles
/// (docs/enclave.md has their ABI and gas prices). The example analyses call the fused precompiles
/// (0x0a10..0x0a14), which take the inputs as they are and parse and compute in one pass. For the
/// array precompiles, encodeColumns builds their input straight from csvColumn's return data, so a
/// 64 MiB dataset is held in memory once as text and once per parsed column, not copied again:
/// memory is what large inputs pay for.
library FastLib {
    address internal constant CSV_COLUMN = address(0x0a00);
    address internal constant STATS = address(0x0a01);
    address internal constant SORT = address(0x0a02);
    address internal constant HISTOGRAM = address(0x0a03);
    address internal constant COUNT_IN_RANGE = address(0x0a04);
    address internal constant LINEAR_FIT = address(0x0a05);
    // The fused ones: abi.encode(bytes[] csvs, column(s), decimals, flags, args...), parsed and computed in one pass.
    address internal constant CSV_STATS = address(0x0a10);
    address internal constant CSV_HISTOGRAM = address(0x0a11);
    address internal constant CSV_COUNT_IN_RANGE = address(0x0a12);
    address internal constant CSV_LINEAR_FIT = address(0x0a13);
    address internal constant CSV_QUANTILE = address(0x0a14);
    /// The fused precompiles' `flags`: each input's first line is a header.
    uint256 internal constant SKIP_HEADER = 1;

    error PrecompileFailed(address precompile);
    error ColumnsDiffer();

    /// abi.encode(inputs, words...) for a fused precompile, with one CALLDATACOPY of `inputs` as it is in the
    /// call data: abi.encode(inputs, ...) would copy each text and then the whole array again (MCOPY), and
    /// `new bytes` would zero-fill the memory first: three passes over a 64 MiB dataset instead of one.
    /// `inputs` must be the call's last argument, canonically encoded (as the enclave encodes analyze's call):
    /// its encoding then runs from its length word to the end of the call data, offsets relative to itself.
    function withInputs(bytes[] calldata inputs, uint256[] memory words) internal pure returns (bytes memory out) {
        uint256 head = 32 * (1 + words.length);
        uint256 start;
        assembly { start := sub(inputs.offset, 32) }
        uint256 size = msg.data.length - start;
        assembly {
            out := mload(0x40)
            mstore(out, add(head, size))
            mstore(0x40, and(add(add(out, add(32, add(head, size))), 31), not(31)))
            mstore(add(out, 32), head) // the offset of the array
        }
        for (uint256 i = 0; i < words.length; i++) {
            uint256 w = words[i];
            assembly { mstore(add(out, add(64, mul(32, i))), w) }
        }
        assembly { calldatacopy(add(add(out, 32), head), start, size) }
    }

    /// STATICCALL of `precompile` with `input` where it is: `precompile.staticcall(input)` would first copy the
    /// input to new memory (an MCOPY of the whole dataset for the fused ones).
    function call(address precompile, bytes memory input) internal view returns (bytes memory ret) {
        bool ok;
        assembly {
            ok := staticcall(gas(), precompile, add(input, 32), mload(input), 0, 0)
            ret := mload(0x40)
            mstore(ret, returndatasize())
            returndatacopy(add(ret, 32), 0, returndatasize())
            mstore(0x40, and(add(add(ret, add(32, returndatasize())), 31), not(31)))
        }
        if (!ok) revert PrecompileFailed(precompile);
    }

    /// abi.encode(int256[] column_0, ..., int256[] column_k-1, args...) of columns `cols` of every
    /// input (each with a header line), in input order.
    function encodeColumns(bytes[] calldata inputs, uint256[] memory cols, uint256[] memory args)
        internal view returns (bytes memory out)
    {
        if (inputs.length == 1) return _single(inputs[0], cols, args);
        bytes[] memory arrays = new bytes[](cols.length);
        for (uint256 c = 0; c < cols.length; c++) arrays[c] = _concat(inputs, cols[c]);
        return _assemble(arrays, args);
    }

    /// One input: csvColumn's return data is copied once, into its place in the output.
    function _single(bytes calldata csv, uint256[] memory cols, uint256[] memory args)
        private view returns (bytes memory out)
    {
        bytes memory req = abi.encode(csv, cols[0], uint256(0), uint256(1));
        uint256 k = cols.length;
        uint256 head = 32 * (k + args.length);
        uint256 body = 0; // length word + elements of one column, in bytes
        for (uint256 c = 0; c < k; c++) {
            uint256 col = cols[c];
            bool ok;
            uint256 rds;
            assembly {
                mstore(add(req, 64), col) // the `column` argument
                ok := staticcall(gas(), 0x0a00, add(req, 32), mload(req), 0, 0)
                rds := returndatasize()
            }
            if (!ok) revert PrecompileFailed(CSV_COLUMN);
            if (c == 0) {
                body = rds - 32;
                out = new bytes(head + k * body);
            } else if (rds - 32 != body) {
                revert ColumnsDiffer();
            }
            uint256 offset = head + c * body;
            assembly {
                returndatacopy(add(add(out, 32), offset), 32, body)
                mstore(add(add(out, 32), mul(32, c)), offset)
            }
        }
        _putArgs(out, k, args);
    }

    /// Column `col` of every input, concatenated, as abi.encode(int256[]).
    function _concat(bytes[] calldata inputs, uint256 col) private view returns (bytes memory arr) {
        bytes[] memory parts = new bytes[](inputs.length);
        uint256 total = 0;
        for (uint256 i = 0; i < inputs.length; i++) {
            parts[i] = call(CSV_COLUMN, abi.encode(inputs[i], col, uint256(0), uint256(1)));
            total += (parts[i].length - 64) / 32;
        }
        arr = new bytes(64 + total * 32);
        assembly {
            mstore(add(arr, 32), 32)
            mstore(add(arr, 64), total)
        }
        uint256 at = 96;
        for (uint256 i = 0; i < parts.length; i++) {
            bytes memory p = parts[i];
            uint256 len = p.length - 64;
            assembly { mcopy(add(arr, at), add(p, 96), len) }
            at += len;
        }
    }

    /// abi.encode(arrays..., args...) from arrays each given as abi.encode(int256[]).
    function _assemble(bytes[] memory arrays, uint256[] memory args) private pure returns (bytes memory out) {
        uint256 k = arrays.length;
        uint256 head = 32 * (k + args.length);
        uint256 size = head;
        for (uint256 c = 0; c < k; c++) size += arrays[c].length - 32;
        out = new bytes(size);
        uint256 offset = head;
        for (uint256 c = 0; c < k; c++) {
            bytes memory a = arrays[c];
            uint256 body = a.length - 32;
            assembly {
                mstore(add(add(out, 32), mul(32, c)), offset)
                mcopy(add(add(out, 32), offset), add(a, 64), body)
            }
            offset += body;
        }
        _putArgs(out, k, args);
    }

    function _putArgs(bytes memory out, uint256 k, uint256[] memory args) private pure {
        for (uint256 i = 0; i < args.length; i++) {
            uint256 a = args[i];
            assembly { mstore(add(add(out, 32), mul(32, add(k, i))), a) }
        }
    }

    function one(uint256 a) internal pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = a;
    }

    function two(uint256 a, uint256 b) internal pure returns (uint256[] memory r) {
        r = new uint256[](2);
        r[0] = a;
        r[1] = b;
    }

    function three(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory r) {
        r = new uint256[](3);
        r[0] = a;
        r[1] = b;
        r[2] = c;
    }

    function four(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory r) {
        r = new uint256[](4);
        r[0] = a;
        r[1] = b;
        r[2] = c;
        r[3] = d;
    }

    function five(uint256 a, uint256 b, uint256 c, uint256 d, uint256 e) internal pure returns (uint256[] memory r) {
        r = new uint256[](5);
        r[0] = a;
        r[1] = b;
        r[2] = c;
        r[3] = d;
        r[4] = e;
    }

    function six(uint256 a, uint256 b, uint256 c, uint256 d, uint256 e, uint256 f) internal pure returns (uint256[] memory r) {
        r = new uint256[](6);
        r[0] = a;
        r[1] = b;
        r[2] = c;
        r[3] = d;
        r[4] = e;
        r[5] = f;
    }

    function none() internal pure returns (uint256[] memory r) {
        r = new uint256[](0);
    }
}
