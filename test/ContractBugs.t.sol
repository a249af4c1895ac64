// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChainFixture} from "./utils/ColdChainFixture.sol";

/// @title ContractBugsTest
/// @notice Minimal reproductions of places where the contracts disagree with the protocol v2 spec
/// (/tmp/coldchain/chain-spec.md, IReadingsInbox). Each test states what the spec says and fails on the current
/// contracts; it passes once the contract is fixed.
contract ContractBugsTest is ColdChainFixture {
    uint64 internal constant DEVICE = 101;

    function setUp() public {
        deploySuite();
    }

    /// @notice IReadingsInbox.isRecorded: "Whether the device's reading observed at `observedAt` is recorded in its
    /// current shipment"; spec: "true iff the device's current shipment holds a recorded reading of the device
    /// observed at observedAt's position". A device bound to a shipment that has not started holds no recorded
    /// reading, yet isRecorded(device, 0) is true: with the stored start and the track's latest time both 0,
    /// `observedAt <= lastObservedAt && observedAt >= startedAt` holds for 0. (Likewise for a shipment cancelled
    /// before its start.) A relayer asking whether a first reading's predecessor (previousObservedAt = 0, "none") is
    /// recorded is told it is. Suggested fix: also require `t.lastObservedAt != 0`.
    function test_contractBug_isRecordedTrueAtTimeZeroWithNothingRecorded() public {
        registerDevice(DEVICE, 300, keyOf("device"));
        uint64[] memory ids = new uint64[](1);
        ids[0] = DEVICE;
        uint64 shipmentId = createShipment(ids); // created, not started: nothing can be recorded
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 0, "nothing recorded");
        vm.assertEq(coldChain.deviceTrack(DEVICE).lastObservedAt, 0, "no head of the chain");
        vm.assertFalse(coldChain.isRecorded(DEVICE, 0), "isRecorded with nothing recorded");
    }
}
