// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {Vm} from "./Vm.sol";

/// @title TestBase
/// @notice What every Solidity test of the project shares: the cheatcodes and input bounding for fuzz tests.
abstract contract TestBase {
    /// @notice The cheatcode contract.
    // solhint-disable-next-line const-name-snakecase
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @notice `bound` was called with `min > max`.
    error BoundInvalid(uint256 min, uint256 max);

    /// @notice Maps `x` into `[min, max]`: values already inside are kept (so the fuzzer's edge values stay
    /// edges), others wrap around by modulo.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min > max) revert BoundInvalid(min, max);
        if (x >= min && x <= max) return x;
        if (min == 0 && max == type(uint256).max) return x;
        return min + (x % (max - min + 1));
    }

    /// @notice Signed variant of {bound} for `[min, max]` with `max - min` below 2^255.
    function boundInt(int256 x, int256 min, int256 max) internal pure returns (int256) {
        if (min > max) revert BoundInvalid(uint256(min), uint256(max));
        if (x >= min && x <= max) return x;
        // max - min < 2^255 for every range the tests use: the subtraction and the casts are exact.
        uint256 size = uint256(max - min) + 1;
        uint256 offset = uint256(x) % size;
        return min + int256(offset);
    }

    /// @notice A deterministic address for a named party (the private key is keccak256 of the name).
    function makeAddr(string memory name) internal pure returns (address) {
        return vm.addr(keyOf(name));
    }

    /// @notice The test private key of a named party.
    function keyOf(string memory name) internal pure returns (uint256) {
        return uint256(keccak256(bytes(name)));
    }
}
