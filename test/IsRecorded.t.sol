// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChainFixture} from "./utils/ColdChainFixture.sol";

/// @title IsRecordedTest
/// @notice `isRecorded(deviceId, observedAt)` says a reading is recorded only when the device's shipment holds one.
contract IsRecordedTest is ColdChainFixture {
    uint64 internal constant DEVICE = 101;

    function setUp() public {
        deploySuite();
    }

    /// @notice A device bound to a shipment that has not started holds no recorded reading: time 0 (the "none" a
    /// first reading names as its predecessor) is not recorded either. Before the fix, a stored start and a latest
    /// time both 0 made `0 <= 0 && 0 >= 0` answer true.
    function test_nothingRecorded_notEvenTimeZero() public {
        registerDevice(DEVICE, 300, keyOf("device"));
        uint64[] memory ids = new uint64[](1);
        ids[0] = DEVICE;
        uint64 shipmentId = createShipment(ids); // created, not started: nothing can be recorded
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 0, "nothing recorded");
        vm.assertEq(coldChain.deviceTrack(DEVICE).lastObservedAt, 0, "no head of the chain");
        vm.assertFalse(coldChain.isRecorded(DEVICE, 0), "isRecorded with nothing recorded");
    }
}
