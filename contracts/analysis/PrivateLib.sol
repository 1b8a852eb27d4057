// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Calls to the enclave's private precompiles (docs/enclave.md "Private mode"): present only in a private run,
/// where the analysis gets no input and reaches the sellers' records through these alone. Each call names the
/// epsilon it spends, in micro-epsilon (1 epsilon = 1,000,000); the calls of a run spend at most the run's epsilon,
/// and a call over it fails (staticcall returns false, the gas passed is consumed, nothing is spent).
/// Columns are the sellers' CSV column indices, values in the column's declared units (value × 10^decimals),
/// clamped to the ranges the sellers declared; results are noisy and may be negative where the truth cannot.
library PrivateLib {
    address internal constant COUNT = address(0x0a06);
    address internal constant SUM = address(0x0a07);
    address internal constant MEAN = address(0x0a08);
    address internal constant HISTOGRAM = address(0x0a09);
    address internal constant QUANTILE = address(0x0a0a);
    address internal constant LINEAR_FIT = address(0x0a0b);

    error PrivateCallFailed(address precompile);

    function call(address precompile, bytes memory input) internal view returns (bytes memory ret) {
        bool ok;
        (ok, ret) = precompile.staticcall(input);
        if (!ok) revert PrivateCallFailed(precompile);
    }

    /// Noisy number of records (with a number in `column`).
    function count(uint256 column, uint256 epsilon) internal view returns (int256) {
        return abi.decode(call(COUNT, abi.encode(column, epsilon)), (int256));
    }

    /// Noisy sum of the clamped values of `column`.
    function sum(uint256 column, uint256 epsilon) internal view returns (int256) {
        return abi.decode(call(SUM, abi.encode(column, epsilon)), (int256));
    }

    /// Noisy mean (× 10^6) of the clamped values of `column`, and the noisy count it used.
    function mean(uint256 column, uint256 epsilon) internal view returns (int256 m, int256 n) {
        return abi.decode(call(MEAN, abi.encode(column, epsilon)), (int256, int256));
    }

    /// Noisy counts of `buckets` buckets of `width` from `lo` (below `lo` in the first, beyond in the last).
    function histogram(uint256 column, int256 lo, int256 width, uint256 buckets, uint256 epsilon)
        internal view returns (int256[] memory)
    {
        return abi.decode(call(HISTOGRAM, abi.encode(column, lo, width, buckets, epsilon)), (int256[]));
    }

    /// One of the candidates lo + j·width (j < candidates) near the `ppm`/10^6 quantile (500000: the median).
    function quantile(uint256 column, uint256 ppm, int256 lo, int256 width, uint256 candidates, uint256 epsilon)
        internal view returns (int256)
    {
        return abi.decode(call(QUANTILE, abi.encode(column, ppm, lo, width, candidates, epsilon)), (int256));
    }

    /// Noisy least squares of `yColumn` on `xColumn`: noisy n, slope and intercept (× 10^6).
    function linearFit(uint256 xColumn, uint256 yColumn, uint256 epsilon)
        internal view returns (int256 n, int256 slope, int256 intercept)
    {
        return abi.decode(call(LINEAR_FIT, abi.encode(xColumn, yColumn, epsilon)), (int256, int256, int256));
    }
}
