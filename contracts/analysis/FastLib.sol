// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Helpers of the analysis contracts' "Fast" builds: calls to the enclave's analytics precompiles
/// (docs/enclave.md has their ABI and gas prices). A column travels as the raw bytes
/// `abi.encode(int256[])` the csvColumn precompile returns, and is passed on without decoding.
library FastLib {
    address internal constant CSV_COLUMN = address(0x0a00);
    address internal constant STATS = address(0x0a01);
    address internal constant SORT = address(0x0a02);
    address internal constant HISTOGRAM = address(0x0a03);
    address internal constant COUNT_IN_RANGE = address(0x0a04);
    address internal constant LINEAR_FIT = address(0x0a05);

    error PrecompileFailed(address precompile);

    function call(address precompile, bytes memory input) internal view returns (bytes memory ret) {
        bool ok;
        (ok, ret) = precompile.staticcall(input);
        if (!ok) revert PrecompileFailed(precompile);
    }

    /// Column `col` of every input (each with a header line), as abi.encode(int256[]).
    function column(bytes[] calldata inputs, uint256 col) internal view returns (bytes memory arr) {
        if (inputs.length == 1) return call(CSV_COLUMN, abi.encode(inputs[0], col, uint256(0), uint256(1)));
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

    /// abi.encode(int256[] values, args...) from a raw column and static arguments.
    function withArgs(bytes memory arr, uint256[] memory args) internal pure returns (bytes memory out) {
        uint256 body = arr.length - 32;
        uint256 head = 32 * (1 + args.length);
        out = new bytes(head + body);
        assembly {
            mstore(add(out, 32), head)
            mcopy(add(out, add(32, head)), add(arr, 64), body)
        }
        for (uint256 i = 0; i < args.length; i++) {
            uint256 a = args[i];
            assembly { mstore(add(out, add(64, mul(32, i))), a) }
        }
    }

    /// abi.encode(int256[] xs, int256[] ys) from two raw columns.
    function pair(bytes memory xs, bytes memory ys) internal pure returns (bytes memory out) {
        uint256 bx = xs.length - 32;
        uint256 by = ys.length - 32;
        out = new bytes(64 + bx + by);
        assembly {
            mstore(add(out, 32), 64)
            mstore(add(out, 64), add(64, bx))
            mcopy(add(out, 96), add(xs, 64), bx)
            mcopy(add(out, add(96, bx)), add(ys, 64), by)
        }
    }
}
