// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @title RelayOrderAttacksTest
/// @notice Issue 13's first attack, "relay order decides the verdict", replayed as a relayer would play it: each
/// test relays the same signed readings in the attacker's order and in the device's order, from the same state,
/// and requires the same verdict. Before protocol v2 each of these moved or erased a breach.
contract RelayOrderAttacksTest is ColdChainFixture {
    uint256 private constant KEY = 0xD00D;
    uint256 private constant KEY_B = 0xBEEF;
    uint64 private constant DEVICE = 7;
    uint64 private constant DEVICE_B = 8;
    uint32 private constant INTERVAL = 300;

    uint64 private shipmentId;
    uint256 private startedAt;

    struct Series {
        uint64 device;
        uint256 key;
        uint256 firstAt;
        int16[] temps;
    }

    function setUp() public {
        deploySuite();
        registerDevice(DEVICE, INTERVAL, KEY);
        registerDevice(DEVICE_B, INTERVAL, KEY_B);
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (DEVICE, DEVICE_B);
        shipmentId = createShipment(ids);
        vm.prank(shipper);
        coldChain.startShipment(shipmentId);
        startedAt = T0;
    }

    /// @notice A 2 h freeze at -3 degrees C used to vanish when the device's latest reading was relayed first (every
    /// earlier one became "late" and formed no run). Now the latest reading waits for its predecessors.
    function test_freezeSurvivesTheLatestReadingRelayedFirst() public {
        Series memory s = _series(DEVICE, KEY, startedAt + 15 minutes, 12, 24, -300, 12);
        _handOver(shipper, carrier, startedAt + 10 minutes);
        vm.warp(startedAt + 1 days);
        uint256 snapshot = vm.snapshotState();
        bytes memory inOrder = _relayInOrder(s);
        vm.revertToState(snapshot);

        uint256 last = s.temps.length - 1;
        vm.recordLogs();
        (uint256 accepted, ) = coldChain.submitReadings(_batch(s, last, last + 1));
        vm.assertEq(accepted, 0, "the latest reading waits for its predecessors");
        _assertSkipped(IReadingsInbox.SkipReason.SequenceGap);
        coldChain.submitReadings(_batch(s, 0, last));
        coldChain.submitReadings(_batch(s, last, last + 1));
        vm.assertEq(_state(), inOrder, "same verdict as in order");
        vm.assertTrue(_flags() & (1 << uint256(IReadingsInbox.BreachReason.Freeze)) != 0, "Freeze recorded");
    }

    /// @notice Two 30-minute excursions 10 minutes apart used to become one SingleExcursion when the in-range
    /// readings between them were held back and relayed later. Now the readings after them wait.
    function test_heldBackReadingsCannotJoinTwoExcursions() public {
        int16[] memory temps = new int16[](28);
        for (uint256 i = 0; i < temps.length; ++i) temps[i] = 500;
        for (uint256 i = 6; i < 12; ++i) temps[i] = 1000; // 30 min out of range
        for (uint256 i = 14; i < 20; ++i) temps[i] = 1000; // 10 min later, 30 min again
        Series memory s = Series(DEVICE, KEY, startedAt + 15 minutes, temps);
        vm.warp(startedAt + 1 days);
        uint256 snapshot = vm.snapshotState();
        bytes memory inOrder = _relayInOrder(s);
        vm.assertTrue(
            _flags() & (1 << uint256(IReadingsInbox.BreachReason.SingleExcursion)) == 0,
            "two 30-minute excursions are no 60-minute one"
        );
        vm.revertToState(snapshot);

        coldChain.submitReadings(_batch(s, 0, 12));
        (uint256 accepted, ) = coldChain.submitReadings(_batch(s, 14, 28));
        vm.assertEq(accepted, 0, "the second excursion waits for the readings between");
        coldChain.submitReadings(_batch(s, 12, 14));
        coldChain.submitReadings(_batch(s, 14, 28));
        vm.assertEq(_state(), inOrder, "same verdict as in order");
    }

    /// @notice A 300-reading backlog of the carrier's period, uploaded after the handover, used to become
    /// StaleSequence when its second window came first (more than 256 sequences ahead), and the gap was charged to
    /// the hub as MissingData. Now the second window waits, and the carrier is charged.
    function test_backlogWindowsInAnyOrderStayTheCarriers() public {
        int16[] memory temps = new int16[](300);
        for (uint256 i = 0; i < temps.length; ++i) temps[i] = 500;
        for (uint256 i = 200; i < 220; ++i) temps[i] = 1000; // 100 min out of range
        temps[210] = 3000; // above the absolute limit
        Series memory s = Series(DEVICE, KEY, startedAt + 15 minutes, temps);
        _handOver(shipper, carrier, startedAt + 5 minutes);
        vm.warp(s.firstAt + 300 * INTERVAL);
        _handOver(carrier, hub, vm.getBlockTimestamp());
        vm.warp(vm.getBlockTimestamp() + 1 days);
        uint256 snapshot = vm.snapshotState();
        coldChain.submitReadings(_window(s, 0, 150));
        coldChain.submitReadings(_window(s, 150, 300));
        bytes memory inOrder = _state();
        vm.revertToState(snapshot);

        vm.recordLogs();
        (uint256 accepted, ) = coldChain.submitReadings(_window(s, 150, 300));
        vm.assertEq(accepted, 0, "the second window waits");
        _assertSkipped(IReadingsInbox.SkipReason.SequenceGap);
        coldChain.submitReadings(_window(s, 0, 150));
        (accepted, ) = coldChain.submitReadings(_window(s, 150, 300));
        vm.assertEq(accepted, 150, "then it is recorded whole");
        vm.assertEq(_state(), inOrder, "same verdict as in order");
        IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(shipmentId);
        uint256 carrierFlags = periods[1].breachFlags;
        vm.assertEq(periods[1].custodian, carrier, "period 1 is the carrier's");
        vm.assertTrue(carrierFlags & (1 << uint256(IReadingsInbox.BreachReason.AbsoluteLimit)) != 0, "carrier AL");
        vm.assertTrue(carrierFlags & (1 << uint256(IReadingsInbox.BreachReason.SingleExcursion)) != 0, "carrier SE");
        vm.assertEq(periods[2].breachFlags, 0, "nothing charged to the hub");
    }

    /// @notice Shipment-level state used to follow "the device that reported last": with one logger out of range
    /// at the end and the other in range, the EXCURSION_ACTIVE flag and the current excursion depended on which
    /// logger's readings were relayed last. Now they are the same either way.
    function test_twoLoggersInEitherOrderGiveOneCondition() public {
        Series memory a = _series(DEVICE, KEY, startedAt + 15 minutes, 20, 4, 1000, 0);
        Series memory b = _series(DEVICE_B, KEY_B, startedAt + 16 minutes, 24, 0, 500, 0);
        vm.warp(startedAt + 1 days);
        uint256 snapshot = vm.snapshotState();
        coldChain.submitReadings(_batch(a, 0, a.temps.length));
        coldChain.submitReadings(_batch(b, 0, b.temps.length));
        bytes memory aFirst = _state();
        vm.revertToState(snapshot);
        coldChain.submitReadings(_batch(b, 0, b.temps.length));
        coldChain.submitReadings(_batch(a, 0, a.temps.length));
        vm.assertEq(_state(), aFirst, "same condition in either order");
        IReadingsInbox.Condition memory c = coldChain.condition(shipmentId);
        vm.assertEq(c.excursionDevices, 1, "one logger is out of range");
        vm.assertTrue(c.statusFlags & 2 != 0, "EXCURSION_ACTIVE: some logger is out of range");
        vm.assertEq(c.longestExcursionSeconds, 4 * INTERVAL, "longest run: four intervals");
    }

    // ---------------------------------------------------------------- helpers

    /// @dev `count` readings from `firstAt`, at 5.00 degrees C but `runLength` of them at `runTemp` from `runFrom`.
    function _series(
        uint64 device,
        uint256 key,
        uint256 firstAt,
        uint256 runFrom,
        uint256 runLength,
        int16 runTemp,
        uint256 tail
    ) private pure returns (Series memory s) {
        uint256 count = runFrom + runLength + tail;
        s = Series(device, key, firstAt, new int16[](count));
        for (uint256 i = 0; i < count; ++i) s.temps[i] = i >= runFrom && i < runFrom + runLength ? runTemp : int16(500);
    }

    function _relayInOrder(Series memory s) private returns (bytes memory) {
        (uint256 accepted, ) = coldChain.submitReadings(_batch(s, 0, s.temps.length));
        vm.assertEq(accepted, s.temps.length, "in order: all recorded");
        return _state();
    }

    /// @dev Readings [from, to) of `s` as one READINGS item; reading i names reading i - 1 (the first names none).
    function _batch(Series memory s, uint256 from, uint256 to) private view returns (bytes memory) {
        BatchEncoder.Reading[] memory readings = new BatchEncoder.Reading[](to - from);
        for (uint256 i = from; i < to; ++i) {
            uint256 at = s.firstAt + i * INTERVAL;
            readings[i - from] = BatchEncoder.Reading(
                s.device,
                uint32(i + 1),
                uint40(at),
                s.temps[i],
                0,
                uint40(i == 0 ? 0 : at - INTERVAL)
            );
        }
        return BatchEncoder.batch(BatchEncoder.signedReadingsItem(domain, s.key, readings));
    }

    /// @dev Readings [from, to) of `s` as one signed window.
    function _window(Series memory s, uint256 from, uint256 to) private view returns (bytes memory) {
        bytes memory samples;
        for (uint256 i = from; i < to; ++i) samples = bytes.concat(samples, abi.encodePacked(s.temps[i], uint8(0)));
        uint256 at = s.firstAt + from * INTERVAL;
        return
            BatchEncoder.batch(
                BatchEncoder.signedWindowItem(
                    domain,
                    s.key,
                    s.device,
                    uint32(from + 1),
                    uint40(at),
                    INTERVAL,
                    samples,
                    uint40(from == 0 ? 0 : at - INTERVAL)
                )
            );
    }

    function _state() private view returns (bytes memory) {
        return
            abi.encode(
                coldChain.condition(shipmentId),
                coldChain.custodyHistory(shipmentId),
                coldChain.deviceTrack(DEVICE),
                coldChain.deviceEvidence(shipmentId, DEVICE),
                coldChain.deviceTrack(DEVICE_B),
                coldChain.deviceEvidence(shipmentId, DEVICE_B)
            );
    }

    function _flags() private view returns (uint256) {
        return coldChain.condition(shipmentId).breachFlags;
    }

    function _assertSkipped(IReadingsInbox.SkipReason reason) private {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool found;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != IReadingsInbox.ReadingSkipped.selector) continue;
            (, , IReadingsInbox.SkipReason r) = abi.decode(logs[i].data, (uint32, uint16, IReadingsInbox.SkipReason));
            vm.assertEq(uint256(r), uint256(reason), "skip reason");
            found = true;
        }
        vm.assertTrue(found, "skipped");
    }

    function _handOver(address from, address to, uint256 at) private {
        vm.warp(at);
        vm.prank(from);
        coldChain.offerCustody(shipmentId, to, uint40(at + 1 hours));
        vm.prank(to);
        coldChain.acceptCustody(shipmentId);
    }
}
