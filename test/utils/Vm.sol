// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title Vm
/// @notice The cheatcodes the Solidity tests use (Hardhat 3 / EDR implements Foundry's set at the same address).
/// @dev Declared here because the project has no forge-std. Signatures are Foundry's; only what is used.
// solhint-disable-next-line interface-starts-with-i
interface Vm {
    /// @notice One log recorded by {recordLogs}.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    // ---------------------------------------------------------------- environment

    function warp(uint256 newTimestamp) external;

    function roll(uint256 newHeight) external;

    function snapshotState() external returns (uint256 snapshotId);

    function revertToState(uint256 snapshotId) external returns (bool success);

    function chainId(uint256 newChainId) external;

    function getBlockTimestamp() external view returns (uint256);

    function getBlockNumber() external view returns (uint256);

    function prank(address msgSender) external;

    function startPrank(address msgSender) external;

    function stopPrank() external;

    function label(address account, string calldata newLabel) external;

    // ---------------------------------------------------------------- keys and signatures

    function addr(uint256 privateKey) external pure returns (address);

    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    // ---------------------------------------------------------------- fuzzing

    function assume(bool condition) external pure;

    // ---------------------------------------------------------------- expectations

    function expectRevert(bytes calldata revertData) external;

    function expectPartialRevert(bytes4 revertData) external;

    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;

    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;

    function recordLogs() external;

    function getRecordedLogs() external returns (Log[] memory logs);

    // ---------------------------------------------------------------- gas

    function snapshotGasLastCall(string calldata name) external returns (uint256 gasUsed);

    function snapshotGasLastCall(string calldata group, string calldata name) external returns (uint256 gasUsed);

    function snapshotValue(string calldata name, uint256 value) external;

    // ---------------------------------------------------------------- assertions

    function assertTrue(bool condition, string calldata error) external pure;

    function assertFalse(bool condition, string calldata error) external pure;

    function assertEq(bool left, bool right, string calldata error) external pure;

    function assertEq(uint256 left, uint256 right, string calldata error) external pure;

    function assertEq(int256 left, int256 right, string calldata error) external pure;

    function assertEq(address left, address right, string calldata error) external pure;

    function assertEq(bytes32 left, bytes32 right, string calldata error) external pure;

    function assertEq(bytes calldata left, bytes calldata right, string calldata error) external pure;

    function assertLe(uint256 left, uint256 right, string calldata error) external pure;

    function assertGe(uint256 left, uint256 right, string calldata error) external pure;

    function assertLt(uint256 left, uint256 right, string calldata error) external pure;

    function assertGt(uint256 left, uint256 right, string calldata error) external pure;

    function toString(uint256 value) external pure returns (string memory);
}
