// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";

import {IP256Verifier} from "./interfaces/IP256Verifier.sol";

/// @title P256Fallback
/// @notice OpenZeppelin's P-256 verifier behind an external call, for chains without the precompile at 0x100.
/// @dev Kept out of the inbox so the inbox stays under the contract size limit; it costs ~250,000 gas per
/// signature where the precompile is missing, and uses the precompile itself where one exists.
contract P256Fallback is IP256Verifier {
    /// @inheritdoc IP256Verifier
    function verify(bytes32 h, bytes32 r, bytes32 s, bytes32 qx, bytes32 qy) external view returns (bool) {
        return P256.verify(h, r, s, qx, qy);
    }
}
