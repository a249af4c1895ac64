// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title IP256Verifier
/// @notice P-256 signature verification for chains without the P256VERIFY precompile (EIP-7951 / RIP-7212).
interface IP256Verifier {
    /// @notice Whether (r, s) is a valid low-s P-256 signature of digest `h` by public key (qx, qy).
    function verify(bytes32 h, bytes32 r, bytes32 s, bytes32 qx, bytes32 qy) external view returns (bool);
}
