// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title Prng
/// @notice A keccak-based pseudo-random stream, so one fuzzed seed drives a whole sequence of operations and any
/// failing seed replays exactly.
library Prng {
    /// @notice Stream state.
    struct Rng {
        uint256 state;
    }

    /// @notice A stream seeded with `seed`.
    function init(uint256 seed) internal pure returns (Rng memory) {
        return Rng(uint256(keccak256(abi.encode(seed, "coldchain.prng"))));
    }

    /// @notice The next 256 random bits.
    function next(Rng memory rng) internal pure returns (uint256) {
        rng.state = uint256(keccak256(abi.encode(rng.state)));
        return rng.state;
    }

    /// @notice Uniform in `[lo, hi]` (modulo bias is irrelevant here).
    function between(Rng memory rng, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (next(rng) % (hi - lo + 1));
    }

    /// @notice Signed uniform in `[lo, hi]` (for ranges below 2^255).
    function betweenInt(Rng memory rng, int256 lo, int256 hi) internal pure returns (int256) {
        // hi - lo < 2^255 for every caller: the casts are exact.
        return lo + int256(next(rng) % (uint256(hi - lo) + 1));
    }

    /// @notice True with probability `percent` / 100.
    function chance(Rng memory rng, uint256 percent) internal pure returns (bool) {
        return next(rng) % 100 < percent;
    }
}
