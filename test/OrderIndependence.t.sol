// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";
import {Prng} from "./utils/Prng.sol";
import {Vm} from "./utils/Vm.sol";

/// @title OrderIndependenceTest
/// @notice The verdict is a function of the set of signed readings delivered, not of their order, batching or
/// relayer. One shipment, three loggers (two at 5 minutes, one at 10), four custody periods (shipper, carrier,
/// hub, receiver), and per seed a random history for each logger: excursions, freezes, absolute-limit spikes,
/// sensor faults and gaps (the logger took no reading), some readings before the start and after the delivery,
/// cut into single readings and signed windows. Every reading reaches the chain after all the handovers (a late
/// backlog). The reference relays each logger's items in the order it took them; each other run relays the same
/// items in a random permutation, split into random batches from random relayers, and relays again whatever was
/// skipped as retryable until nothing is left. Every run must end with the same condition, custody periods,
/// device tracks and device evidence, and the same multiset of BreachRecorded and BreachRunShared events; and
/// every reading inside the shipment must end up recorded (nothing is lost to an order).
/// @dev Runs: `fuzz.runs` seeds x PERMUTATIONS_PER_SEED permutations (the closing note counts them).
contract OrderIndependenceTest is ColdChainFixture {
    using Prng for Prng.Rng;

    uint256 private constant DEVICES = 3;
    uint256 private constant PERMUTATIONS_PER_SEED = 3;
    uint256 private constant KIND_READING = 1;
    uint256 private constant KIND_WINDOW = 2;

    /// @notice A unit of evidence as the device signed it: one reading, or one window (never split by a relayer).
    struct Unit {
        uint256 kind;
        uint64 device;
        /// @dev A reading's 81 bytes, or a whole WINDOW item.
        bytes body;
        /// @dev Time of the last sample inside the shipment (0: none inside, a final skip).
        uint256 lastInside;
    }

    /// @notice What a run ends with.
    struct Outcome {
        bytes condition;
        bytes periods;
        bytes devices;
        uint256 breachEventsHash;
        uint256 breachEvents;
        uint256 rounds;
    }

    uint256[DEVICES] private keys = [uint256(0xA11CE), uint256(0xB0B), uint256(0xCA7)];
    uint64[DEVICES] private ids = [uint64(101), uint64(102), uint64(103)];
    uint32[DEVICES] private intervals = [uint32(300), uint32(300), uint32(600)];

    uint64 private shipmentId;
    uint256 private startedAt;
    uint256 private deliveredAt;

    function setUp() public {
        deploySuite();
        uint64[] memory deviceIds = new uint64[](DEVICES);
        for (uint256 i = 0; i < DEVICES; ++i) {
            registerDevice(ids[i], intervals[i], keys[i]);
            deviceIds[i] = ids[i];
        }
        shipmentId = createShipment(deviceIds);
        vm.warp(T0 + 1 hours);
        vm.prank(shipper);
        coldChain.startShipment(shipmentId);
        startedAt = T0 + 1 hours;
        _handOver(shipper, carrier, startedAt + 2 hours);
        _handOver(carrier, hub, startedAt + 10 hours);
        _handOver(hub, receiver, startedAt + 18 hours);
        deliveredAt = startedAt + 18 hours;
        // Every reading is relayed after the handovers: the whole trip is a late backlog.
        vm.warp(T0 + 3 days);
    }

    /// forge-config: default.fuzz.runs = 32
    function testFuzz_sameVerdictForAnyOrderSplitAndRelayer(uint256 seed) public {
        Unit[] memory units = _history(Prng.init(seed));
        uint256 snapshot = vm.snapshotState();
        Outcome memory inOrder = this.relay(units, seed, false);
        vm.assertGt(inOrder.breachEvents, 0, "the history raises breaches");
        for (uint256 k = 0; k < PERMUTATIONS_PER_SEED; ++k) {
            vm.revertToState(snapshot);
            Outcome memory other = this.relay(units, uint256(keccak256(abi.encode(seed, k))), true);
            vm.assertEq(other.condition, inOrder.condition, "condition");
            vm.assertEq(other.periods, inOrder.periods, "custody periods");
            vm.assertEq(other.devices, inOrder.devices, "device tracks and evidence");
            vm.assertEq(other.breachEvents, inOrder.breachEvents, "number of breach events");
            vm.assertEq(other.breachEventsHash, inOrder.breachEventsHash, "breach events");
        }
    }

    /// @notice Relays `units` until nothing retryable is left: in the devices' own order (`shuffled` false) or
    /// in random permutations and batches from random relayers (`shuffled` true). External: each run starts with
    /// fresh memory.
    function relay(Unit[] calldata units, uint256 seed, bool shuffled) external returns (Outcome memory out) {
        Prng.Rng memory rng = Prng.init(seed);
        bool[] memory done = new bool[](units.length);
        uint256 left = units.length;
        vm.recordLogs();
        while (left != 0) {
            ++out.rounds;
            uint256[] memory order = _pending(done, left);
            if (shuffled) _shuffle(rng, order);
            uint256 accepted = _submitInBatches(rng, units, order, shuffled);
            // A relayer can delay evidence, never lose it: every round while something is pending records more.
            vm.assertGt(accepted, 0, "progress: a pending reading was never recorded");
            for (uint256 i = 0; i < order.length; ++i) {
                Unit calldata u = units[order[i]];
                if (u.lastInside == 0 || coldChain.isRecorded(u.device, uint40(u.lastInside))) {
                    done[order[i]] = true;
                    --left;
                }
            }
        }
        (out.breachEventsHash, out.breachEvents) = _breachEvents(vm.getRecordedLogs());
        out.condition = abi.encode(coldChain.condition(shipmentId));
        out.periods = abi.encode(coldChain.custodyHistory(shipmentId));
        for (uint256 i = 0; i < DEVICES; ++i) {
            out.devices = bytes.concat(
                out.devices,
                abi.encode(coldChain.deviceTrack(ids[i]), coldChain.deviceEvidence(shipmentId, ids[i]))
            );
        }
        // Every reading inside the shipment is recorded, whatever the order.
        for (uint256 i = 0; i < units.length; ++i) {
            if (units[i].lastInside != 0) {
                vm.assertTrue(coldChain.isRecorded(units[i].device, uint40(units[i].lastInside)), "recorded");
            }
        }
    }

    // ---------------------------------------------------------------- the history

    /// @dev Each device's readings from an hour before the start to an hour after the delivery, in the order it took
    /// them, cut into units; all devices' units concatenated device by device (the reference order).
    function _history(Prng.Rng memory rng) private view returns (Unit[] memory units) {
        units = new Unit[](0);
        for (uint256 i = 0; i < DEVICES; ++i) units = _concat(units, _deviceUnits(rng, i));
    }

    function _deviceUnits(Prng.Rng memory rng, uint256 device) private view returns (Unit[] memory units) {
        uint256 interval = intervals[device];
        uint256 from = startedAt - 1 hours + rng.between(0, interval - 1);
        uint256 count = (deliveredAt + 1 hours - from) / interval;
        (int16[] memory temps, uint8[] memory flags, bool[] memory taken) = _series(rng, count);
        units = new Unit[](count);
        uint256 n;
        uint256 previous = rng.chance(50) ? 0 : from - interval; // 0: the logger's first reading ever
        uint256 i;
        while (i < count) {
            if (!taken[i]) {
                ++i;
                continue;
            }
            // A window of consecutive readings (no gap inside), or a single reading.
            uint256 size = rng.chance(40) ? rng.between(2, 16) : 1;
            uint256 end = i + 1;
            while (end < count && end - i < size && taken[end]) ++end;
            units[n++] = _unit(device, i, end, from, temps, flags, previous);
            previous = from + (end - 1) * interval;
            i = end;
        }
        assembly ("memory-safe") {
            mstore(units, n)
        }
    }

    /// @dev Temperatures, flags and which readings the logger took: 5.00 degrees C with random episodes.
    function _series(
        Prng.Rng memory rng,
        uint256 count
    ) private pure returns (int16[] memory temps, uint8[] memory flags, bool[] memory taken) {
        temps = new int16[](count);
        flags = new uint8[](count);
        taken = new bool[](count);
        for (uint256 i = 0; i < count; ++i) {
            temps[i] = int16(int256(rng.betweenInt(400, 600)));
            taken[i] = true;
        }
        uint256 episodes = rng.between(3, 7);
        for (uint256 e = 0; e < episodes; ++e) {
            uint256 at = rng.between(0, count - 1);
            uint256 length = rng.between(1, 30);
            uint256 kind = rng.between(0, 4);
            for (uint256 j = at; j < count && j < at + length; ++j) {
                if (kind == 0)
                    temps[j] = 1000; // out of range (above 8 degrees C)
                else if (kind == 1)
                    temps[j] = -300; // frozen
                else if (kind == 2)
                    taken[j] = false; // the logger took nothing: a gap
                else if (kind == 3 && j == at)
                    temps[j] = 3000; // above the absolute limit
                else if (kind == 4 && j == at) flags[j] = 0x01; // sensor fault
            }
        }
    }

    function _unit(
        uint256 device,
        uint256 from,
        uint256 end,
        uint256 firstAt,
        int16[] memory temps,
        uint8[] memory flags,
        uint256 previous
    ) private view returns (Unit memory u) {
        uint256 interval = intervals[device];
        u.device = ids[device];
        uint256 at = firstAt + from * interval;
        uint256 lastAt = firstAt + (end - 1) * interval;
        if (lastAt >= startedAt && at <= deliveredAt) {
            u.lastInside = lastAt <= deliveredAt ? lastAt : deliveredAt - ((deliveredAt - firstAt) % interval);
        }
        if (end - from == 1) {
            u.kind = KIND_READING;
            u.body = BatchEncoder.signReading(
                domain,
                keys[device],
                BatchEncoder.Reading(
                    ids[device],
                    uint32(from + 1),
                    uint40(at),
                    temps[from],
                    flags[from],
                    uint40(previous)
                )
            );
        } else {
            bytes memory samples;
            for (uint256 j = from; j < end; ++j) samples = bytes.concat(samples, abi.encodePacked(temps[j], flags[j]));
            u.kind = KIND_WINDOW;
            u.body = BatchEncoder.signedWindowItem(
                domain,
                keys[device],
                ids[device],
                uint32(from + 1),
                uint40(at),
                uint32(interval),
                samples,
                uint40(previous)
            );
        }
    }

    // ---------------------------------------------------------------- relaying

    /// @dev Submits the units of `order` in batches (random sizes when `shuffled`, else one batch per round),
    /// each from a random relayer; consecutive readings of one device share a READINGS item. Returns the readings
    /// accepted.
    function _submitInBatches(
        Prng.Rng memory rng,
        Unit[] calldata units,
        uint256[] memory order,
        bool shuffled
    ) private returns (uint256 accepted) {
        uint256 i;
        while (i < order.length) {
            uint256 end = shuffled ? i + rng.between(1, 12) : order.length;
            if (end > order.length) end = order.length;
            bytes memory items;
            uint256 j = i;
            while (j < end) {
                Unit calldata u = units[order[j]];
                if (u.kind == KIND_WINDOW) {
                    items = bytes.concat(items, u.body);
                    ++j;
                    continue;
                }
                bytes memory body;
                uint256 k = j;
                while (k < end && units[order[k]].kind == KIND_READING && units[order[k]].device == u.device) {
                    body = bytes.concat(body, units[order[k]].body);
                    ++k;
                }
                items = bytes.concat(items, BatchEncoder.readingsItem(u.device, uint16(k - j), body));
                j = k;
            }
            vm.prank(address(uint160(uint256(keccak256(abi.encode("relayer", rng.next() % 5))))));
            (uint256 a, ) = coldChain.submitReadings(BatchEncoder.batch(items));
            accepted += a;
            i = end;
        }
    }

    /// @dev Sum and count of the hashes of every BreachRecorded and BreachRunShared event: equal multisets give
    /// equal sums (the events' order may differ with the relay order; their contents may not).
    function _breachEvents(Vm.Log[] memory logs) private view returns (uint256 sum, uint256 count) {
        for (uint256 i = 0; i < logs.length; ++i) {
            Vm.Log memory log = logs[i];
            if (log.emitter != address(coldChain) || log.topics.length == 0) continue;
            bytes32 topic = log.topics[0];
            if (topic != IReadingsInbox.BreachRecorded.selector && topic != IReadingsInbox.BreachRunShared.selector)
                continue;
            unchecked {
                sum += uint256(keccak256(abi.encode(log.topics, log.data)));
            }
            ++count;
        }
    }

    function _handOver(address from, address to, uint256 at) private {
        vm.warp(at);
        vm.prank(from);
        coldChain.offerCustody(shipmentId, to, uint40(at + 1 hours));
        vm.prank(to);
        coldChain.acceptCustody(shipmentId);
        IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(shipmentId);
        vm.assertEq(periods[periods.length - 1].since, at, "boundary");
    }

    function _pending(bool[] memory done, uint256 left) private pure returns (uint256[] memory order) {
        order = new uint256[](left);
        uint256 n;
        for (uint256 i = 0; i < done.length; ++i) if (!done[i]) order[n++] = i;
    }

    function _shuffle(Prng.Rng memory rng, uint256[] memory a) private pure {
        for (uint256 i = a.length; i > 1; --i) {
            uint256 j = rng.next() % i;
            (a[i - 1], a[j]) = (a[j], a[i - 1]);
        }
    }

    function _concat(Unit[] memory a, Unit[] memory b) private pure returns (Unit[] memory c) {
        c = new Unit[](a.length + b.length);
        for (uint256 i = 0; i < a.length; ++i) c[i] = a[i];
        for (uint256 i = 0; i < b.length; ++i) c[a.length + i] = b[i];
    }
}
