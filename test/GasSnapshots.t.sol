// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";

/// @title GasSnapshotsTest
/// @notice Deterministic gas of the ingestion path, written to snapshots/GasSnapshotsTest.json by
/// `npx hardhat test solidity --snapshot` and checked by `--snapshot-check`.
/// @dev Steady state: the device is registered, its shipment started 10 minutes before its first reading and
/// one reading is already recorded, so the device track, its evidence and the condition slots are non-zero (the
/// cost of every batch after the first). Readings are 5 minutes apart, in range (5.00 degrees C), evaluated
/// (after the adaptation period), so no breach is charged: the common case.
contract GasSnapshotsTest is ColdChainFixture {
    /// @notice The public secp256k1 test key of sdk/protocol/test-vectors.ts.
    uint256 private constant DEVICE_KEY = 0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef;
    uint64 private constant DEVICE = 0xc0ffee;
    uint32 private constant INTERVAL = 300;
    int16 private constant TEMP = 500;

    uint256 private firstAt;

    function setUp() public {
        deploySuite();
        registerDevice(DEVICE, INTERVAL, DEVICE_KEY);
        startedShipment(DEVICE);
        firstAt = T0 + 600;
        vm.warp(T0 + 2 days);
        (uint256 accepted, ) = coldChain.submitReadings(_readingsBatch(1, 1));
        vm.assertEq(accepted, 1, "primed");
    }

    function test_gas_submitReadings_secp256k1_1() public {
        _measureReadings(1, "submitReadings_secp256k1_1");
    }

    function test_gas_submitReadings_secp256k1_10() public {
        _measureReadings(10, "submitReadings_secp256k1_10");
    }

    function test_gas_submitReadings_secp256k1_100() public {
        _measureReadings(100, "submitReadings_secp256k1_100");
    }

    function test_gas_submitReadings_secp256k1_window_100() public {
        bytes memory samples;
        for (uint256 i = 0; i < 100; ++i) samples = bytes.concat(samples, abi.encodePacked(TEMP, uint8(0)));
        bytes memory batch = BatchEncoder.batch(
            BatchEncoder.signedWindowItem(
                domain,
                DEVICE_KEY,
                DEVICE,
                2,
                uint40(firstAt + INTERVAL),
                INTERVAL,
                samples,
                uint40(firstAt)
            )
        );
        vm.prank(relayer);
        (uint256 accepted, uint256 skipped) = coldChain.submitReadings(batch);
        uint256 gasUsed = vm.snapshotGasLastCall("submitReadings_secp256k1_window_100");
        vm.assertEq(accepted, 100, "accepted");
        vm.assertEq(skipped, 0, "skipped");
        vm.snapshotValue("submitReadings_secp256k1_window_100_perReading", gasUsed / 100);
    }

    function _measureReadings(uint256 count, string memory name) private {
        bytes memory batch = _readingsBatch(2, count);
        vm.prank(relayer);
        (uint256 accepted, uint256 skipped) = coldChain.submitReadings(batch);
        uint256 gasUsed = vm.snapshotGasLastCall(name);
        vm.assertEq(accepted, count, "accepted");
        vm.assertEq(skipped, 0, "skipped");
        vm.snapshotValue(string.concat(name, "_perReading"), gasUsed / count);
    }

    /// @dev One READINGS item of `count` readings from sequence `firstSequence` on, one interval apart.
    function _readingsBatch(uint32 firstSequence, uint256 count) private view returns (bytes memory) {
        BatchEncoder.Reading[] memory readings = new BatchEncoder.Reading[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint32 sequence = firstSequence + uint32(i);
            uint40 observedAt = uint40(firstAt + (sequence - 1) * INTERVAL);
            readings[i] = BatchEncoder.Reading({
                deviceId: DEVICE,
                sequence: sequence,
                observedAt: observedAt,
                tempCentiC: TEMP,
                flags: 0,
                // Each names the one before; the first is the logger's first reading ever.
                previousObservedAt: sequence == 1 ? 0 : observedAt - INTERVAL
            });
        }
        return BatchEncoder.batch(BatchEncoder.signedReadingsItem(domain, DEVICE_KEY, readings));
    }
}
