// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChain} from "../contracts/ColdChain.sol";
import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";
import {Prng} from "./utils/Prng.sol";
import {TestBase} from "./utils/TestBase.sol";
import {Vm} from "./utils/Vm.sol";

/// @title ColdChainHandler
/// @notice Drives a deployed ColdChain through random but well-formed actions for the invariant tests: batches
/// of signed readings (with corrupted items mixed in), two-step custody handovers, starts, deliveries,
/// decisions, cancellations, new shipments for freed devices, and time. Every batch is checked on the spot: the
/// handler predicts each item's fate from ghost state (replay window, shipment window, clock, signatures) and
/// asserts the return values and the exact sequence of ReadingsRecorded / WindowRecorded / ReadingSkipped
/// events. Ghost sums of excursion seconds (per shipment and per custody period) follow every accepted reading.
// solhint-disable-next-line max-states-count
contract ColdChainHandler is TestBase {
    using Prng for Prng.Rng;

    /// @notice A device the handler signs for.
    struct Device {
        uint64 id;
        uint256 key;
        uint32 intervalSeconds;
    }

    /// @notice What the handler needs from the test's deployment.
    struct Setup {
        ColdChain coldChain;
        bytes32 domain;
        uint32 profileId;
        address shipper;
        address receiver;
        address goodsOwner;
        address relayer;
        address[] carriers;
        Device[] devices;
        Device unboundDevice;
    }

    /// @notice The handler's copy of a shipment.
    struct GhostShipment {
        IShipments.ShipmentStatus status;
        uint256 startedAt;
        uint256 deliveredAt;
        address[] custodians;
        uint256[] since;
        uint256[] excursionSeconds;
        uint256 cumulativeSeconds;
        uint256 readings;
        uint64[] deviceIds;
    }

    /// @dev One event the batch must emit, in order.
    struct Expected {
        uint256 kind;
        uint64 shipmentId;
        uint64 deviceId;
        uint256 sequence;
        uint256 count;
        uint256 reason;
        bytes records;
    }

    /// @dev A batch under construction and what it must do.
    struct Build {
        bytes items;
        bytes records;
        Expected[] expected;
        uint256 n;
        uint256 accepted;
        uint256 skipped;
        uint256 corrupted;
    }

    /// @dev A window item under construction.
    struct Window {
        uint32 firstSequence;
        uint40 firstObservedAt;
        uint32 intervalSeconds;
        uint256 count;
        bytes samples;
        bool signatureValid;
        uint256 corruption;
    }

    uint256 private constant MAX_FUTURE_SKEW_SECONDS = 300;
    uint256 private constant ADAPTATION_SECONDS = 600;
    int256 private constant MIN_CENTI_C = 200;
    int256 private constant MAX_CENTI_C = 800;
    uint256 private constant REPLAY_WINDOW = 256;
    uint256 private constant MAX_CUSTODY_PERIODS = 64;
    uint256 private constant MAX_EXPECTED = 128;
    uint256 private constant ACCEPT = type(uint256).max;

    uint256 private constant EVENT_READINGS = 0;
    uint256 private constant EVENT_WINDOW = 1;
    uint256 private constant EVENT_SKIPPED = 2;

    uint256 private constant NONE = 0;
    uint256 private constant WRONG_KEY = 1;
    uint256 private constant TAMPERED = 2;
    uint256 private constant REPLAYED = 3;
    uint256 private constant FUTURE = 4;
    uint256 private constant BEFORE_START = 5;
    uint256 private constant WRONG_INTERVAL = 6;

    /// @notice Id of a device nobody registered.
    uint64 public constant UNKNOWN_DEVICE = 999;

    ColdChain public immutable coldChain;
    bytes32 private immutable domain;
    uint32 private immutable profileId;
    address private immutable shipper;
    address private immutable receiver;
    address private immutable goodsOwner;
    address private immutable relayer;

    address[] private carriers;
    Device[] private devices;
    Device private unboundDevice;

    uint64[] private shipmentIds;
    mapping(uint64 shipmentId => GhostShipment) private ghosts;
    mapping(uint64 deviceId => uint64 shipmentId) private boundShipment;
    mapping(uint64 deviceId => uint256) private highestSequence;
    mapping(uint64 deviceId => mapping(uint256 sequence => bool)) private sequenceUsed;
    mapping(uint64 deviceId => uint256[]) private acceptedSequences;
    mapping(uint64 deviceId => uint256) private lastSequence;
    mapping(uint64 shipmentId => uint256) private observedCumulative;

    /// @notice How many times each (device, sequence) appeared in a ReadingsRecorded or WindowRecorded event.
    mapping(uint64 deviceId => mapping(uint256 sequence => uint256)) public timesRecorded;

    /// @notice The handler's clock (block.timestamp after every action).
    uint256 public now_;
    /// @notice Readings recorded twice (must stay 0).
    uint256 public duplicateRecordings;
    /// @notice Readings accepted, as predicted and as returned by submitReadings.
    uint256 public ghostAccepted;
    /// @notice Readings skipped, as predicted and as returned by submitReadings.
    uint256 public ghostSkipped;
    /// @notice Readings seen in ReadingsRecorded / WindowRecorded events.
    uint256 public recordedFromEvents;
    /// @notice ReadingSkipped events seen.
    uint256 public skippedEvents;
    /// @notice Items the handler corrupted on purpose (each must be skipped).
    uint256 public corruptedItems;
    /// @notice Batches submitted, WINDOW items and READINGS items in them.
    uint256 public batches;
    uint256 public windowItems;
    uint256 public readingsItems;
    /// @notice Accepted readings charged to a custody period before the current one.
    uint256 public lateCharges;
    /// @notice Handovers completed, expired offers refused, shipments delivered, decided, cancelled, started.
    uint256 public handovers;
    uint256 public expiredOffers;
    uint256 public deliveries;
    uint256 public decisions;
    uint256 public cancellations;
    /// @notice Times a new shipment took a device of a started, cancelled shipment during the hold (must stay 0).
    uint256 public holdViolations;
    uint256 public starts;
    /// @notice Skipped items by SkipReason.
    mapping(uint256 reason => uint256) public skipsByReason;

    constructor(Setup memory s) {
        coldChain = s.coldChain;
        domain = s.domain;
        profileId = s.profileId;
        shipper = s.shipper;
        receiver = s.receiver;
        goodsOwner = s.goodsOwner;
        relayer = s.relayer;
        carriers = s.carriers;
        for (uint256 i = 0; i < s.devices.length; ++i) devices.push(s.devices[i]);
        unboundDevice = s.unboundDevice;
        now_ = vm.getBlockTimestamp();
        // Two shipments: devices 0 and 1 travel together, device 2 alone.
        uint64[] memory first = new uint64[](2);
        (first[0], first[1]) = (s.devices[0].id, s.devices[1].id);
        uint64[] memory second = new uint64[](1);
        second[0] = s.devices[2].id;
        _createShipment(first);
        _createShipment(second);
    }

    // ================================================================ actions

    /// @notice Submits a batch of 1 to 4 items, about one reading in five corrupted.
    function submit(uint256 seed) public {
        _sync();
        Prng.Rng memory rng = Prng.init(seed);
        Build memory b;
        b.expected = new Expected[](MAX_EXPECTED);
        uint256 items = rng.between(1, 4);
        for (uint256 i = 0; i < items; ++i) {
            uint256 kind = rng.next() % 100;
            if (kind < 8) _readingsItem(rng, b, Device(UNKNOWN_DEVICE, keyOf("unknown device"), 300));
            else if (kind < 12) _readingsItem(rng, b, unboundDevice);
            else if (kind < 40) _windowItem(rng, b, devices[rng.next() % devices.length]);
            else _readingsItem(rng, b, devices[rng.next() % devices.length]);
        }
        _submitAndCheck(b);
        _checkCumulativeNeverDecreases();
    }

    /// @notice Lets 1 s .. 30 min pass, then submits a batch.
    function submitLater(uint256 seed, uint256 seconds_) external {
        _advance(bound(seconds_, 1, 30 minutes));
        submit(seed);
    }

    /// @notice Lets 1 s .. 3 h pass.
    function warp(uint256 seconds_) external {
        _advance(bound(seconds_, 1, 3 hours));
    }

    /// @notice The custodian of a created shipment starts it.
    function start(uint256 seed) external {
        _sync();
        (bool found, uint64 id) = _pick(seed, IShipments.ShipmentStatus.Created, IShipments.ShipmentStatus.Created);
        if (!found) return;
        GhostShipment storage g = ghosts[id];
        vm.prank(g.custodians[g.custodians.length - 1]);
        coldChain.startShipment(id);
        g.status = IShipments.ShipmentStatus.InTransit;
        g.startedAt = now_;
        ++starts;
    }

    /// @notice Two-step handover of a created or in-transit shipment to a carrier or (1 in 5) the receiver;
    /// 1 in 8 offers is left to expire and its late acceptance must be refused.
    function handOver(uint256 seed, uint256 waitSeconds) external {
        _sync();
        Prng.Rng memory rng = Prng.init(seed);
        (bool found, uint64 id) = _pick(
            rng.next(),
            IShipments.ShipmentStatus.Created,
            IShipments.ShipmentStatus.InTransit
        );
        if (!found) return;
        GhostShipment storage g = ghosts[id];
        address from = g.custodians[g.custodians.length - 1];
        address to = rng.chance(20) ? receiver : carriers[rng.next() % carriers.length];
        // The last custody period is kept for the receiver.
        if (to == from || g.custodians.length >= MAX_CUSTODY_PERIODS - 1) to = receiver;
        uint256 deadline = now_ + rng.between(0, 2 hours);
        vm.prank(from);
        coldChain.offerCustody(id, to, uint40(deadline));
        if (rng.chance(12)) {
            _advance(deadline - now_ + bound(waitSeconds, 1, 1 hours));
            vm.prank(to);
            try coldChain.acceptCustody(id) {
                vm.assertTrue(false, "expired offer accepted");
            } catch (bytes memory reason) {
                vm.assertEq(reason, abi.encodeWithSelector(IShipments.CustodyOfferInvalid.selector, id, to), "why");
            }
            vm.prank(from);
            coldChain.cancelCustodyOffer(id);
            ++expiredOffers;
            return;
        }
        _advance(bound(waitSeconds, 0, deadline - now_));
        // The boundary was fixed by the offer (its block time, or just after the latest reading recorded).
        uint256 handoverAt = coldChain.custodyOffer(id).handoverAt;
        vm.assertGe(handoverAt, g.since[g.since.length - 1], "boundary before the previous one");
        vm.prank(to);
        coldChain.acceptCustody(id);
        _recordHandover(g, to, handoverAt);
    }

    /// @notice The receiver (or QA) releases or rejects a delivered shipment; its devices go on a new one.
    function decide(uint256 seed) external {
        _sync();
        (bool found, uint64 id) = _pick(seed, IShipments.ShipmentStatus.Delivered, IShipments.ShipmentStatus.Delivered);
        if (!found) return;
        GhostShipment storage g = ghosts[id];
        vm.prank(receiver);
        if (seed % 2 == 0) {
            coldChain.release(id);
            g.status = IShipments.ShipmentStatus.Released;
        } else {
            coldChain.reject(id, "TEMPERATURE");
            g.status = IShipments.ShipmentStatus.Rejected;
        }
        ++decisions;
        _createShipment(g.deviceIds);
    }

    /// @notice The custodian cancels a created or in-transit shipment; its devices go on a new one (after the hold
    /// if it had started: readings observed before the cancellation are still recorded until then).
    function cancel(uint256 seed) external {
        _sync();
        if (seed % 4 != 0) return; // rarer than the other actions
        (bool found, uint64 id) = _pick(
            seed >> 2,
            IShipments.ShipmentStatus.Created,
            IShipments.ShipmentStatus.InTransit
        );
        if (!found) return;
        GhostShipment storage g = ghosts[id];
        vm.prank(g.custodians[g.custodians.length - 1]);
        coldChain.cancelShipment(id);
        g.status = IShipments.ShipmentStatus.Cancelled;
        g.deliveredAt = now_; // readings observed after the cancellation are refused
        ++cancellations;
        if (g.startedAt != 0) {
            // Its devices stay bound for the hold: a new shipment cannot take them before.
            vm.prank(shipper);
            try coldChain.createShipment(_params(g.deviceIds)) {
                ++holdViolations;
            } catch {}
            _advance(7 days);
        }
        _createShipment(g.deviceIds);
    }

    // ================================================================ views for the invariants

    /// @notice Every shipment created so far.
    function allShipments() external view returns (uint64[] memory) {
        return shipmentIds;
    }

    /// @notice The devices the handler signs for.
    function allDevices() external view returns (Device[] memory) {
        return devices;
    }

    /// @notice The ghost of a shipment.
    function ghost(uint64 shipmentId) external view returns (GhostShipment memory) {
        return ghosts[shipmentId];
    }

    /// @notice Sequences accepted from a device, oldest first.
    function accepted(uint64 deviceId) external view returns (uint256[] memory) {
        return acceptedSequences[deviceId];
    }

    /// @notice The highest cumulative excursion this handler has seen for a shipment.
    function cumulativeSeen(uint64 shipmentId) external view returns (uint256) {
        return observedCumulative[shipmentId];
    }

    // ================================================================ batches

    function _readingsItem(Prng.Rng memory rng, Build memory b, Device memory dev) private {
        uint256 n = rng.between(1, 6);
        ++readingsItems;
        bytes memory body;
        for (uint256 i = 0; i < n; ++i) body = bytes.concat(body, _reading(rng, b, dev));
        b.items = bytes.concat(b.items, BatchEncoder.readingsItem(dev.id, uint16(n), body));
        // Skips come as they are met; the item's accepted readings follow in one ReadingsRecorded.
        if (b.records.length != 0) {
            Expected memory e = b.expected[b.n++];
            (e.kind, e.deviceId, e.shipmentId) = (EVENT_READINGS, dev.id, boundShipment[dev.id]);
            (e.count, e.records) = (b.records.length / 12, b.records);
            b.records = "";
        }
    }

    function _reading(Prng.Rng memory rng, Build memory b, Device memory dev) private returns (bytes memory) {
        uint256 corruption = rng.chance(20) ? 1 + (rng.next() % 5) : NONE;
        if (corruption == REPLAYED && acceptedSequences[dev.id].length == 0) corruption = NONE;
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        BatchEncoder.Reading memory r;
        r.deviceId = dev.id;
        r.sequence = _pickSequence(rng, dev.id, corruption == REPLAYED);
        r.observedAt = uint40(_pickTime(rng, g, dev.intervalSeconds, corruption));
        r.tempCentiC = _pickTemperature(rng);
        r.flags = _pickFlags(rng);
        uint256 key = corruption == WRONG_KEY ? dev.key ^ 1 : dev.key;
        (bytes32 sigR, bytes32 sigVs) = BatchEncoder.signCompact(key, BatchEncoder.readingDigest(domain, r));
        if (corruption == TAMPERED) r.tempCentiC ^= 1; // signed one temperature, sends another
        uint256 outcome = _predictReading(dev, r, corruption != WRONG_KEY && corruption != TAMPERED);
        if (corruption != NONE) _expectCorrupted(b, outcome);
        if (outcome == ACCEPT) {
            ++b.accepted;
            b.records = bytes.concat(b.records, BatchEncoder.readingRecord(r));
        } else {
            _expect(b, dev.id, r.sequence, 1, outcome, false);
        }
        return BatchEncoder.encodeReading(r, sigR, sigVs);
    }

    function _windowItem(Prng.Rng memory rng, Build memory b, Device memory dev) private {
        ++windowItems;
        Window memory w;
        w.corruption = rng.chance(25) ? 1 + (rng.next() % 6) : NONE;
        if (w.corruption == NONE && rng.chance(20)) w.corruption = WRONG_INTERVAL;
        if (w.corruption == REPLAYED && acceptedSequences[dev.id].length == 0) w.corruption = NONE;
        w.count = rng.between(2, 8);
        w.intervalSeconds = w.corruption == WRONG_INTERVAL ? dev.intervalSeconds + 1 : dev.intervalSeconds;
        w.firstSequence = _pickWindowSequence(rng, dev.id, w.count, w.corruption == REPLAYED);
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        uint256 span = (w.count - 1) * w.intervalSeconds;
        uint256 last = _pickTime(rng, g, dev.intervalSeconds, w.corruption == BEFORE_START ? NONE : w.corruption);
        if (w.corruption == BEFORE_START && g.startedAt > 0) last = g.startedAt - 1;
        w.firstObservedAt = uint40(last > span ? last - span : 0);
        for (uint256 i = 0; i < w.count; ++i) {
            w.samples = bytes.concat(w.samples, abi.encodePacked(_pickTemperature(rng), _pickFlags(rng)));
        }
        uint256 key = w.corruption == WRONG_KEY ? dev.key ^ 1 : dev.key;
        bytes32 digest = BatchEncoder.windowDigest(
            domain,
            dev.id,
            w.firstSequence,
            w.firstObservedAt,
            w.intervalSeconds,
            w.samples
        );
        (bytes32 sigR, bytes32 sigVs) = BatchEncoder.signCompact(key, digest);
        if (w.corruption == TAMPERED) w.samples[0] ^= 0x01;
        w.signatureValid = w.corruption != WRONG_KEY && w.corruption != TAMPERED;
        (uint256 outcome, uint256 from, uint256 until) = _predictWindow(dev, w);
        if (outcome == ACCEPT) {
            // A window straddling the start or the end: the samples outside are skipped (both skips come first).
            uint256 outside = uint256(IReadingsInbox.SkipReason.OutsideShipmentWindow);
            if (from != 0) _expect(b, dev.id, w.firstSequence, from, outside, false);
            if (until != w.count) _expect(b, dev.id, w.firstSequence + until, w.count - until, outside, false);
            _expect(b, dev.id, w.firstSequence + from, until - from, ACCEPT, w.corruption != NONE);
        } else {
            _expect(b, dev.id, w.firstSequence, w.count, outcome, w.corruption != NONE);
        }
        b.items = bytes.concat(
            b.items,
            BatchEncoder.windowItem(
                dev.id,
                w.firstSequence,
                w.firstObservedAt,
                w.intervalSeconds,
                w.samples,
                sigR,
                sigVs
            )
        );
    }

    function _expect(
        Build memory b,
        uint64 deviceId,
        uint256 sequence,
        uint256 count,
        uint256 outcome,
        bool corrupted
    ) private {
        Expected memory e = b.expected[b.n++];
        (e.deviceId, e.sequence, e.count, e.shipmentId) = (deviceId, sequence, count, boundShipment[deviceId]);
        if (outcome == ACCEPT) {
            e.kind = EVENT_WINDOW;
            b.accepted += count;
        } else {
            e.kind = EVENT_SKIPPED;
            e.reason = outcome;
            b.skipped += count;
            ++skipsByReason[outcome];
        }
        if (corrupted) _expectCorrupted(b, outcome);
    }

    function _expectCorrupted(Build memory b, uint256 outcome) private pure {
        ++b.corrupted;
        vm.assertTrue(outcome != ACCEPT, "a corrupted item would be accepted: generator error");
    }

    function _submitAndCheck(Build memory b) private {
        vm.recordLogs();
        vm.prank(relayer);
        (uint256 acceptedCount, uint256 skippedCount) = coldChain.submitReadings(BatchEncoder.batch(b.items));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(acceptedCount, b.accepted, "accepted");
        vm.assertEq(skippedCount, b.skipped, "skipped");
        uint256 j = _matchLogs(logs, b);
        vm.assertEq(j, b.n, "events: one per item, in order");
        ghostAccepted += b.accepted;
        ghostSkipped += b.skipped;
        corruptedItems += b.corrupted;
        ++batches;
    }

    /// @dev Walks the inbox's events in order against the expected list; returns how many matched.
    function _matchLogs(Vm.Log[] memory logs, Build memory b) private returns (uint256 j) {
        for (uint256 i = 0; i < logs.length; ++i) {
            Vm.Log memory log = logs[i];
            if (log.emitter != address(coldChain) || log.topics.length == 0) continue;
            bytes32 topic = log.topics[0];
            if (topic == IReadingsInbox.ReadingsRecorded.selector) {
                _matchReadings(log, b.expected[j++]);
            } else if (topic == IReadingsInbox.WindowRecorded.selector) {
                _matchWindow(log, b.expected[j++]);
            } else if (topic == IReadingsInbox.ReadingSkipped.selector) {
                _matchSkipped(log, b.expected[j++]);
            }
        }
    }

    function _matchReadings(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_READINGS, "expected another event than ReadingsRecorded");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "ReadingsRecorded.shipmentId");
        (uint64 deviceId, bytes memory records) = abi.decode(log.data, (uint64, bytes));
        vm.assertEq(deviceId, e.deviceId, "ReadingsRecorded.deviceId");
        vm.assertEq(keccak256(records), keccak256(e.records), "ReadingsRecorded.readings");
        for (uint256 i = 0; i < records.length; i += 12) {
            uint256 sequence = uint32(bytes4(bytes.concat(records[i], records[i + 1], records[i + 2], records[i + 3])));
            _countRecorded(deviceId, sequence, 1);
        }
    }

    function _matchWindow(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_WINDOW, "expected another event than WindowRecorded");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "WindowRecorded.shipmentId");
        (uint64 deviceId, uint32 firstSequence, , , bytes memory samples) = abi.decode(
            log.data,
            (uint64, uint32, uint40, uint32, bytes)
        );
        vm.assertEq(deviceId, e.deviceId, "WindowRecorded.deviceId");
        vm.assertEq(firstSequence, e.sequence, "WindowRecorded.firstSequence");
        vm.assertEq(samples.length, 3 * e.count, "WindowRecorded.samples");
        _countRecorded(deviceId, firstSequence, samples.length / 3);
    }

    function _matchSkipped(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_SKIPPED, "an item was skipped that should have been recorded");
        vm.assertEq(log.topics[1], bytes32(uint256(e.deviceId)), "ReadingSkipped.deviceId");
        (uint32 sequence, uint16 count, uint8 reason) = abi.decode(log.data, (uint32, uint16, uint8));
        vm.assertEq(sequence, e.sequence, "ReadingSkipped.sequence");
        vm.assertEq(count, e.count, "ReadingSkipped.count");
        vm.assertEq(reason, e.reason, "ReadingSkipped.reason");
        ++skippedEvents;
    }

    function _countRecorded(uint64 deviceId, uint256 firstSequence, uint256 count) private {
        for (uint256 s = firstSequence; s < firstSequence + count; ++s) {
            if (++timesRecorded[deviceId][s] > 1) ++duplicateRecordings;
        }
        recordedFromEvents += count;
    }

    // ================================================================ predictions (the ghost inbox)

    /// @dev Why the inbox skips a reading (in its order of checks), or ACCEPT; marks accepted ones in the ghost.
    function _predictReading(
        Device memory dev,
        BatchEncoder.Reading memory r,
        bool signatureValid
    ) private returns (uint256) {
        uint256 reason = _deviceSkip(dev.id);
        if (reason != ACCEPT) return reason;
        if (!signatureValid) return uint256(IReadingsInbox.SkipReason.BadSignature);
        reason = _timeSkip(dev.id, r.observedAt, r.observedAt);
        if (reason != ACCEPT) return reason;
        reason = _replaySkip(dev.id, r.sequence, 1);
        if (reason != ACCEPT) return reason;
        _ghostApply(dev, r.observedAt, r.tempCentiC, r.flags);
        return ACCEPT;
    }

    /// @dev The outcome of a window and, when accepted, the samples [from, until) inside the shipment.
    function _predictWindow(
        Device memory dev,
        Window memory w
    ) private returns (uint256 reason, uint256 from, uint256 until) {
        reason = _deviceSkip(dev.id);
        if (reason != ACCEPT) return (reason, 0, 0);
        if (w.intervalSeconds != dev.intervalSeconds) return (uint256(IReadingsInbox.SkipReason.MalformedItem), 0, 0);
        if (!w.signatureValid) return (uint256(IReadingsInbox.SkipReason.BadSignature), 0, 0);
        uint256 lastAt = w.firstObservedAt + (w.count - 1) * w.intervalSeconds;
        if (lastAt > now_ + MAX_FUTURE_SKEW_SECONDS) return (uint256(IReadingsInbox.SkipReason.FutureTimestamp), 0, 0);
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        // The samples observed from the start to the end (delivery or cancellation), both included.
        until = w.count;
        while (from < w.count && w.firstObservedAt + from * w.intervalSeconds < g.startedAt) ++from;
        while (
            until > from && g.deliveredAt != 0 && w.firstObservedAt + (until - 1) * w.intervalSeconds > g.deliveredAt
        ) {
            --until;
        }
        if (from == until) return (uint256(IReadingsInbox.SkipReason.OutsideShipmentWindow), 0, 0);
        reason = _replaySkip(dev.id, w.firstSequence, w.count, w.firstSequence + from, w.firstSequence + until);
        if (reason != ACCEPT) return (reason, 0, 0);
        for (uint256 i = from; i < until; ++i) {
            int16 temp = int16((uint16(uint8(w.samples[3 * i])) << 8) | uint16(uint8(w.samples[3 * i + 1])));
            _ghostApply(dev, w.firstObservedAt + i * w.intervalSeconds, temp, uint8(w.samples[3 * i + 2]));
        }
        return (ACCEPT, from, until);
    }

    function _deviceSkip(uint64 deviceId) private view returns (uint256) {
        if (deviceId == UNKNOWN_DEVICE) return uint256(IReadingsInbox.SkipReason.UnknownDevice);
        uint64 id = boundShipment[deviceId];
        if (id == 0) return uint256(IReadingsInbox.SkipReason.UnboundDevice);
        IShipments.ShipmentStatus status = ghosts[id].status;
        bool cancelledAfterStart = status == IShipments.ShipmentStatus.Cancelled && ghosts[id].startedAt != 0;
        if (
            status != IShipments.ShipmentStatus.InTransit &&
            status != IShipments.ShipmentStatus.Delivered &&
            !cancelledAfterStart
        ) {
            return uint256(IReadingsInbox.SkipReason.ShipmentNotActive);
        }
        return ACCEPT;
    }

    function _timeSkip(uint64 deviceId, uint256 firstAt, uint256 lastAt) private view returns (uint256) {
        if (lastAt > now_ + MAX_FUTURE_SKEW_SECONDS) return uint256(IReadingsInbox.SkipReason.FutureTimestamp);
        GhostShipment storage g = ghosts[boundShipment[deviceId]];
        if (firstAt < g.startedAt || (g.deliveredAt != 0 && lastAt > g.deliveredAt)) {
            return uint256(IReadingsInbox.SkipReason.OutsideShipmentWindow);
        }
        return ACCEPT;
    }

    /// @dev The replay rule from ReplayWindow's NatSpec, over an explicit set of used sequences.
    function _replaySkip(uint64 deviceId, uint256 first, uint256 count) private returns (uint256) {
        return _replaySkip(deviceId, first, count, first, first + count);
    }

    /// @dev As above; of the sequences marked, only [recordFrom, recordUntil) are recorded (a window straddling
    /// the shipment's start or end marks all its sequences used but records the samples inside).
    function _replaySkip(
        uint64 deviceId,
        uint256 first,
        uint256 count,
        uint256 recordFrom,
        uint256 recordUntil
    ) private returns (uint256) {
        if (first + REPLAY_WINDOW <= highestSequence[deviceId]) return uint256(IReadingsInbox.SkipReason.StaleSequence);
        for (uint256 s = first; s < first + count; ++s) {
            if (sequenceUsed[deviceId][s]) return uint256(IReadingsInbox.SkipReason.DuplicateSequence);
        }
        for (uint256 s = first; s < first + count; ++s) {
            sequenceUsed[deviceId][s] = true;
            if (s >= recordFrom && s < recordUntil) acceptedSequences[deviceId].push(s);
        }
        if (first + count - 1 > highestSequence[deviceId]) highestSequence[deviceId] = first + count - 1;
        return ACCEPT;
    }

    /// @dev Counts an accepted reading and its excursion seconds (vaccine profile: 2-8 C, evaluated from 600 s
    /// after the start, not when flagged 0x01), charged to the custody period containing its observation time.
    function _ghostApply(Device memory dev, uint256 observedAt, int256 temp, uint256 flags) private {
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        g.readings += 1;
        if (flags & 0x01 != 0 || observedAt < g.startedAt + ADAPTATION_SECONDS) return;
        if (temp >= MIN_CENTI_C && temp <= MAX_CENTI_C) return;
        uint256 period = 0;
        for (uint256 i = 0; i < g.since.length; ++i) if (g.since[i] <= observedAt) period = i;
        g.excursionSeconds[period] += dev.intervalSeconds;
        g.cumulativeSeconds += dev.intervalSeconds;
        if (period != g.since.length - 1) ++lateCharges;
    }

    // ================================================================ random choices

    /// @dev A fresh sequence (sometimes after a gap), an older one (used, unused in a gap, or stale), or, for a
    /// replay, one already accepted.
    function _pickSequence(Prng.Rng memory rng, uint64 deviceId, bool replay) private returns (uint32) {
        uint256[] storage done = acceptedSequences[deviceId];
        if (replay && done.length > 0) return uint32(done[done.length - 1 - (rng.next() % _min(done.length, 300))]);
        if (rng.chance(88) || lastSequence[deviceId] == 0) {
            lastSequence[deviceId] += 1 + _skipAhead(rng);
            return uint32(lastSequence[deviceId]);
        }
        uint256 highest = highestSequence[deviceId];
        // A quarter of these at the window's lower edge: 255 behind the highest (acceptable if unused) or 256
        // (stale, whether used or not).
        if (rng.chance(25) && highest > REPLAY_WINDOW)
            return uint32(highest - rng.between(REPLAY_WINDOW - 1, REPLAY_WINDOW));
        uint256 back = rng.chance(25) ? rng.between(250, 600) : rng.between(0, 300);
        return uint32(lastSequence[deviceId] > back ? lastSequence[deviceId] - back : 1);
    }

    /// @dev Usually no gap; sometimes a few lost readings; rarely a counter jump past the replay window.
    function _skipAhead(Prng.Rng memory rng) private pure returns (uint256) {
        uint256 k = rng.next() % 100;
        if (k < 94) return 0;
        if (k < 99) return rng.between(1, 20);
        return rng.between(REPLAY_WINDOW, 1000);
    }

    function _pickWindowSequence(
        Prng.Rng memory rng,
        uint64 deviceId,
        uint256 count,
        bool replay
    ) private returns (uint32) {
        uint256[] storage done = acceptedSequences[deviceId];
        if (replay && done.length > 0) {
            uint256 hit = done[done.length - 1 - (rng.next() % _min(done.length, 50))];
            uint256 back = rng.between(0, count - 1);
            return uint32(hit > back ? hit - back : 1);
        }
        uint256 first = lastSequence[deviceId] + 1 + _skipAhead(rng);
        lastSequence[deviceId] = first + count - 1;
        return uint32(first);
    }

    /// @dev Mostly recent and inside the shipment window; some late, some ahead within the skew, some after
    /// delivery; or corrupted: beyond the skew, or before the start.
    function _pickTime(
        Prng.Rng memory rng,
        GhostShipment storage g,
        uint256 intervalSeconds,
        uint256 corruption
    ) private view returns (uint256) {
        if (corruption == FUTURE) return now_ + MAX_FUTURE_SKEW_SECONDS + rng.between(1, 3600);
        if (corruption == BEFORE_START && g.startedAt > 0) return g.startedAt - rng.between(1, 3600);
        if (g.startedAt == 0) return now_ - rng.between(0, 600);
        uint256 lo = g.startedAt;
        uint256 hi = g.deliveredAt != 0 && g.deliveredAt < now_ ? g.deliveredAt : now_;
        uint256 kind = rng.next() % 100;
        if (kind < 70) return hi - rng.between(0, _min(hi - lo, intervalSeconds));
        if (kind < 85) return rng.between(lo, hi);
        if (kind < 93) return now_ + rng.between(0, MAX_FUTURE_SKEW_SECONDS);
        return hi + rng.between(1, 600);
    }

    function _pickTemperature(Prng.Rng memory rng) private pure returns (int16) {
        uint256 kind = rng.next() % 100;
        if (kind < 60) return int16(rng.betweenInt(MIN_CENTI_C, MAX_CENTI_C));
        if (kind < 70) return [int16(199), 200, 800, 801][rng.next() % 4];
        if (kind < 90) return int16(rng.betweenInt(MAX_CENTI_C + 1, 2600));
        return int16(rng.betweenInt(-600, MIN_CENTI_C - 1));
    }

    function _pickFlags(Prng.Rng memory rng) private pure returns (uint8) {
        if (rng.chance(92)) return 0;
        return [uint8(0x01), 0x02, 0x04, 0x05][rng.next() % 4];
    }

    // ================================================================ shipments and custody

    function _params(uint64[] memory deviceIds) private view returns (IShipments.ShipmentParams memory) {
        return
            IShipments.ShipmentParams({
                receiver: receiver,
                owner: goodsOwner,
                profileId: profileId,
                deviceIds: deviceIds,
                plannedStartAt: uint40(now_),
                externalRef: bytes32(uint256(shipmentIds.length + 1))
            });
    }

    function _createShipment(uint64[] memory deviceIds) private {
        vm.prank(shipper);
        uint64 id = coldChain.createShipment(_params(deviceIds));
        shipmentIds.push(id);
        GhostShipment storage g = ghosts[id];
        g.status = IShipments.ShipmentStatus.Created;
        g.custodians.push(shipper);
        g.since.push(now_);
        g.excursionSeconds.push(0);
        g.deviceIds = deviceIds;
        for (uint256 i = 0; i < deviceIds.length; ++i) boundShipment[deviceIds[i]] = id;
    }

    function _recordHandover(GhostShipment storage g, address to, uint256 since) private {
        if (g.status == IShipments.ShipmentStatus.Created) {
            g.status = IShipments.ShipmentStatus.InTransit;
            g.startedAt = since; // the first handover's boundary
            ++starts;
        }
        g.custodians.push(to);
        g.since.push(since);
        g.excursionSeconds.push(0);
        ++handovers;
        if (to == receiver) {
            g.status = IShipments.ShipmentStatus.Delivered;
            g.deliveredAt = since;
            ++deliveries;
        }
    }

    /// @dev A shipment whose status is `a` or `b`, searched from a random position.
    function _pick(
        uint256 seed,
        IShipments.ShipmentStatus a,
        IShipments.ShipmentStatus b
    ) private view returns (bool found, uint64 id) {
        uint256 n = shipmentIds.length;
        for (uint256 k = 0; k < n; ++k) {
            id = shipmentIds[((seed % n) + k) % n];
            IShipments.ShipmentStatus status = ghosts[id].status;
            if (status == a || status == b) return (true, id);
        }
        return (false, 0);
    }

    function _checkCumulativeNeverDecreases() private {
        for (uint256 i = 0; i < shipmentIds.length; ++i) {
            uint64 id = shipmentIds[i];
            uint256 cumulative = coldChain.condition(id).cumulativeExcursionSeconds;
            vm.assertGe(cumulative, observedCumulative[id], "cumulative excursion decreased");
            observedCumulative[id] = cumulative;
        }
    }

    // ================================================================ time

    function _advance(uint256 seconds_) private {
        now_ += seconds_;
        vm.warp(now_);
        vm.roll(vm.getBlockNumber() + 1);
    }

    /// @dev The fuzzer may run calls in fresh blocks: pin the clock to the handler's.
    function _sync() private {
        vm.warp(now_);
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}

/// @title ColdChainInvariantTest
/// @notice Invariants of the deployed suite under random readings, custody handovers, deliveries and time,
/// driven by {ColdChainHandler}; plus a concrete replay of a handler run and concrete batch tests.
/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 50
/// forge-config: default.invariant.fail-on-revert = true
contract ColdChainInvariantTest is ColdChainFixture {
    using Prng for Prng.Rng;

    /// @notice Selector filter for the fuzzer (Foundry's `FuzzSelector`).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    uint64 internal constant DEVICE_A = 101;
    uint64 internal constant DEVICE_B = 102;
    uint64 internal constant DEVICE_C = 103;
    uint64 internal constant DEVICE_UNBOUND = 104;

    ColdChainHandler internal handler;

    function setUp() public {
        deploySuite();
        ColdChainHandler.Setup memory s;
        s.coldChain = coldChain;
        s.domain = domain;
        s.profileId = vaccineProfileId;
        s.shipper = shipper;
        s.receiver = receiver;
        s.goodsOwner = goodsOwner;
        s.relayer = relayer;
        s.carriers = new address[](3);
        (s.carriers[0], s.carriers[1], s.carriers[2]) = (carrier, hub, carrier2);
        s.devices = new ColdChainHandler.Device[](3);
        s.devices[0] = _device(DEVICE_A, 300);
        s.devices[1] = _device(DEVICE_B, 600);
        s.devices[2] = _device(DEVICE_C, 60);
        s.unboundDevice = _device(DEVICE_UNBOUND, 300);
        handler = new ColdChainHandler(s);
    }

    function _device(uint64 id, uint32 intervalSeconds) private returns (ColdChainHandler.Device memory d) {
        d = ColdChainHandler.Device(id, keyOf(string.concat("device ", vm.toString(id))), intervalSeconds);
        registerDevice(id, intervalSeconds, d.key);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = ColdChainHandler.submit.selector;
        selectors[1] = ColdChainHandler.submitLater.selector;
        selectors[2] = ColdChainHandler.warp.selector;
        selectors[3] = ColdChainHandler.start.selector;
        selectors[4] = ColdChainHandler.handOver.selector;
        selectors[5] = ColdChainHandler.decide.selector;
        selectors[6] = ColdChainHandler.cancel.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    // ================================================================ invariants

    /// @notice Exactly one custodian at any time: the history is never empty, its last entry is the current
    /// custodian, custodianAt agrees with the history at and around every handover, and the history is the
    /// ghost's (same parties, same times, never the same party twice in a row).
    function invariant_exactlyOneCustodianAtATime() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) _checkCustody(ids[i]);
    }

    /// @notice A (device, sequence) is recorded at most once: no duplicate in the events, the events add up to
    /// the accepted readings, and the shipments' reading counts add up to them too.
    function invariant_sequenceRecordedAtMostOnce() public view {
        vm.assertEq(handler.duplicateRecordings(), 0, "a (device, sequence) was recorded twice");
        vm.assertEq(handler.recordedFromEvents(), handler.ghostAccepted(), "recorded events vs accepted");
        uint64[] memory ids = handler.allShipments();
        uint256 total;
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 count = coldChain.condition(ids[i]).readingCount;
            vm.assertEq(count, handler.ghost(ids[i]).readings, "readingCount");
            total += count;
        }
        vm.assertEq(total, handler.ghostAccepted(), "sum of readingCount");
        ColdChainHandler.Device[] memory devices = handler.allDevices();
        for (uint256 d = 0; d < devices.length; ++d) {
            uint256[] memory done = handler.accepted(devices[d].id);
            uint256 from = done.length > 64 ? done.length - 64 : 0;
            for (uint256 k = from; k < done.length; ++k) {
                vm.assertTrue(coldChain.isSequenceUsed(devices[d].id, uint32(done[k])), "accepted but not used");
                vm.assertEq(handler.timesRecorded(devices[d].id, done[k]), 1, "accepted once");
            }
        }
    }

    /// @notice Cumulative excursion never decreases: it equals the ghost sum (which only grows) and is at least
    /// what the handler saw after its last action.
    /// @notice The devices of a shipment cancelled after its start stay bound to it for the hold.
    function invariant_cancelledShipmentsKeepTheirDevices() public view {
        vm.assertEq(handler.holdViolations(), 0, "device re-bound during the hold");
    }

    function invariant_excursionNeverDecreases() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 cumulative = coldChain.condition(ids[i]).cumulativeExcursionSeconds;
            vm.assertEq(cumulative, handler.ghost(ids[i]).cumulativeSeconds, "cumulative vs ghost");
            vm.assertGe(cumulative, handler.cumulativeSeen(ids[i]), "cumulative decreased");
        }
    }

    /// @notice The excursion seconds charged to the custody periods add up to the shipment's, each period's
    /// equals the ghost's (readings charged by observation time), and excursionSecondsOf agrees per party.
    function invariant_custodyExcursionSumsToShipment() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) {
            IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(ids[i]);
            ColdChainHandler.GhostShipment memory g = handler.ghost(ids[i]);
            uint256 sum;
            for (uint256 p = 0; p < periods.length; ++p) {
                vm.assertEq(periods[p].excursionSeconds, g.excursionSeconds[p], "period excursion vs ghost");
                sum += periods[p].excursionSeconds;
            }
            vm.assertEq(sum, coldChain.condition(ids[i]).cumulativeExcursionSeconds, "sum of periods");
            address last = periods[periods.length - 1].custodian;
            uint256 ofLast;
            for (uint256 p = 0; p < periods.length; ++p) {
                if (periods[p].custodian == last) ofLast += periods[p].excursionSeconds;
            }
            vm.assertEq(lens.excursionSecondsOf(ids[i], last), ofLast, "excursionSecondsOf");
        }
    }

    /// @notice Every batch skipped exactly its invalid items (checked per batch by the handler), so the totals
    /// agree too: one ReadingSkipped per skipped item, every corrupted item among them.
    function invariant_batchesSkipExactlyTheInvalidItems() public view {
        vm.assertLe(handler.corruptedItems(), handler.skippedEvents(), "corrupted items all skipped");
        uint256 byReason;
        for (uint256 r = 0; r <= uint256(IReadingsInbox.SkipReason.MalformedItem); ++r) {
            byReason += handler.skipsByReason(r);
        }
        vm.assertEq(byReason, handler.skippedEvents(), "one ReadingSkipped per skipped item");
    }

    function _checkCustody(uint64 id) private view {
        IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(id);
        ColdChainHandler.GhostShipment memory g = handler.ghost(id);
        IShipments.ShipmentInfo memory info = coldChain.shipment(id);
        vm.assertGe(periods.length, 1, "custody history is empty");
        vm.assertEq(periods.length, g.custodians.length, "history length vs ghost");
        vm.assertEq(info.custodyPeriods, periods.length, "custodyPeriods");
        address current = periods[periods.length - 1].custodian;
        vm.assertEq(info.custodian, current, "shipment().custodian vs history");
        vm.assertEq(uint256(info.status), uint256(g.status), "status vs ghost");
        // A boundary may lie a little ahead of the block time (after a reading from a device clock that leads).
        uint256 now_ = handler.now_();
        vm.assertEq(lens.custodianAt(id, uint40(now_)), _holderAt(periods, now_), "custodianAt(now)");
        vm.assertEq(lens.custodianAt(id, type(uint40).max), current, "custodianAt(future)");
        for (uint256 p = 0; p < periods.length; ++p) {
            vm.assertEq(periods[p].custodian, g.custodians[p], "custodian vs ghost");
            vm.assertEq(periods[p].since, g.since[p], "since vs ghost");
            if (p > 0) {
                vm.assertGe(periods[p].since, periods[p - 1].since, "history out of order");
                vm.assertTrue(periods[p].custodian != periods[p - 1].custodian, "handed to itself");
            }
            uint256 t = periods[p].since;
            vm.assertEq(lens.custodianAt(id, uint40(t)), _holderAt(periods, t), "custodianAt(since)");
            vm.assertEq(lens.custodianAt(id, uint40(t - 1)), _holderAt(periods, t - 1), "custodianAt(since-1)");
        }
        IShipments.CustodyOffer memory offer = coldChain.custodyOffer(id);
        vm.assertTrue(offer.to != current || offer.to == address(0), "offer to the custodian");
    }

    /// @dev Reference for custodianAt: the custodian of the last period that began at or before `t` (the first
    /// custodian before any).
    function _holderAt(IShipments.CustodyPeriod[] memory periods, uint256 t) private pure returns (address holder) {
        holder = periods[0].custodian;
        for (uint256 p = 0; p < periods.length; ++p) if (periods[p].since <= t) holder = periods[p].custodian;
    }

    // ================================================================ concrete replay of a handler run

    /// @notice A fixed sequence of 150 handler actions with every invariant checked after each 5th; also pins
    /// that the run reaches the interesting cases (late charges, deliveries, expired offers, every skip reason
    /// the handler can cause).
    function test_invariants_replay() public {
        Prng.Rng memory rng = Prng.init(2026);
        for (uint256 i = 1; i <= 150; ++i) {
            uint256 action = rng.next() % 9;
            uint256 seed = rng.next();
            if (action < 3) handler.submit(seed);
            else if (action == 3) handler.submitLater(seed, rng.next());
            else if (action == 4) handler.warp(rng.next());
            else if (action == 5) handler.start(seed);
            else if (action == 6) handler.handOver(seed, rng.next());
            else if (action == 7) handler.decide(seed);
            else handler.cancel(seed);
            // An external call: each check runs in fresh memory, so memory does not pile up over the loop.
            if (i % 5 == 0) this.checkAllInvariants();
        }
        vm.assertGt(handler.ghostAccepted(), 100, "readings accepted");
        vm.assertGt(handler.corruptedItems(), 20, "corrupted items");
        vm.assertGt(handler.handovers(), 5, "handovers");
        vm.assertGt(handler.deliveries(), 0, "deliveries");
        vm.assertGt(handler.decisions(), 0, "decisions");
        vm.assertGt(handler.lateCharges(), 0, "late readings charged to an earlier custodian");
        for (uint256 r = 0; r <= uint256(IReadingsInbox.SkipReason.MalformedItem); ++r) {
            if (r == uint256(IReadingsInbox.SkipReason.RevokedDevice)) continue;
            vm.assertGt(handler.skipsByReason(r), 0, string.concat("skip reason ", vm.toString(r)));
        }
    }

    /// @notice Every invariant of this suite (for {test_invariants_replay}).
    function checkAllInvariants() external view {
        invariant_exactlyOneCustodianAtATime();
        invariant_sequenceRecordedAtMostOnce();
        invariant_excursionNeverDecreases();
        invariant_custodyExcursionSumsToShipment();
        invariant_batchesSkipExactlyTheInvalidItems();
    }
}

/// @title ColdChainBatchTest
/// @notice Concrete batches against a fresh deployment: the k-corrupted-items property outside the invariant
/// run, the EIP-712 domain, and regressions of the contract bugs this suite found.
contract ColdChainBatchTest is ColdChainFixture {
    uint64 internal constant DEVICE_A = 101;
    uint64 internal constant DEVICE_UNBOUND = 104;

    function setUp() public {
        deploySuite();
    }

    // ================================================================ concrete batches

    function test_domainSeparator_matchesEip712Domain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract, , ) = coldChain
            .eip712Domain();
        vm.assertEq(keccak256(bytes(name)), keccak256("ColdChain"), "name");
        vm.assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        bytes32 expected = keccak256(
            abi.encode(
                BatchEncoder.DOMAIN_TYPEHASH,
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifyingContract
            )
        );
        vm.assertEq(domain, expected, "domain separator");
        vm.assertEq(coldChain.READING_TYPEHASH(), BatchEncoder.READING_TYPEHASH, "Reading typehash");
        vm.assertEq(coldChain.READING_WINDOW_TYPEHASH(), BatchEncoder.READING_WINDOW_TYPEHASH, "window typehash");
    }

    /// @notice A batch with k = 8 corrupted items records every valid reading and emits exactly 8
    /// ReadingSkipped events, one per corrupted item, with the right reason, in batch order.
    function test_submitReadings_batchWithKCorruptedItemsRecordsEveryValidOne() public {
        uint256 keyA = keyOf("device A");
        registerDevice(DEVICE_A, 300, keyA);
        registerDevice(DEVICE_UNBOUND, 300, keyOf("device unbound"));
        uint64 shipmentId = startedShipment(DEVICE_A);
        vm.warp(T0 + 1 days);
        uint256 at = T0 + 600;

        bytes memory items;
        // Item 1: READINGS of A, 6 readings: valid, bad signature, valid, replay of the first, valid, future.
        BatchEncoder.Reading[] memory r = new BatchEncoder.Reading[](6);
        r[0] = BatchEncoder.Reading(DEVICE_A, 1, uint40(at), 500, 0);
        r[1] = BatchEncoder.Reading(DEVICE_A, 2, uint40(at + 300), 510, 0);
        r[2] = BatchEncoder.Reading(DEVICE_A, 3, uint40(at + 600), 520, 0);
        r[3] = BatchEncoder.Reading(DEVICE_A, 1, uint40(at + 900), 530, 0);
        r[4] = BatchEncoder.Reading(DEVICE_A, 4, uint40(at + 1200), 540, 0);
        r[5] = BatchEncoder.Reading(DEVICE_A, 5, uint40(vm.getBlockTimestamp() + 301), 550, 0);
        bytes memory body;
        for (uint256 i = 0; i < r.length; ++i) {
            body = bytes.concat(body, BatchEncoder.signReading(domain, i == 1 ? keyA ^ 1 : keyA, r[i]));
        }
        items = BatchEncoder.readingsItem(DEVICE_A, 6, body);
        // Item 2: READINGS of an unknown device, 2 readings (2 skipped items).
        BatchEncoder.Reading[] memory unknown = new BatchEncoder.Reading[](2);
        unknown[0] = BatchEncoder.Reading(999, 1, uint40(at), 500, 0);
        unknown[1] = BatchEncoder.Reading(999, 2, uint40(at + 300), 500, 0);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyA, unknown));
        // Item 3: READINGS of a registered device on no shipment.
        BatchEncoder.Reading[] memory unbound = new BatchEncoder.Reading[](1);
        unbound[0] = BatchEncoder.Reading(DEVICE_UNBOUND, 1, uint40(at), 500, 0);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyOf("device unbound"), unbound));
        // Item 4: a valid WINDOW of A, 4 readings (sequences 10..13).
        bytes memory samples = hex"01f40001f900032c00ffe200"; // 5.00, 5.05, 8.12, -0.30 C
        items = bytes.concat(
            items,
            BatchEncoder.signedWindowItem(domain, keyA, DEVICE_A, 10, uint40(at + 1500), 300, samples)
        );
        // Item 5: a WINDOW of A with the wrong interval (malformed), 4 readings in one skipped item.
        items = bytes.concat(
            items,
            BatchEncoder.signedWindowItem(domain, keyA, DEVICE_A, 20, uint40(at + 3000), 600, samples)
        );
        // Item 6: READINGS of A: one observed before the shipment started.
        BatchEncoder.Reading[] memory early = new BatchEncoder.Reading[](1);
        early[0] = BatchEncoder.Reading(DEVICE_A, 30, uint40(T0 - 1), 500, 0);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyA, early));

        vm.recordLogs();
        vm.prank(relayer);
        (uint256 accepted, uint256 skipped) = coldChain.submitReadings(BatchEncoder.batch(items));
        Vm.Log[] memory logs = vm.getRecordedLogs();

        vm.assertEq(accepted, 3 + 4, "3 valid readings + a window of 4");
        vm.assertEq(skipped, 3 + 2 + 1 + 4 + 1, "readings skipped (the malformed window counts 4)");
        uint8[8] memory reasons = [
            uint8(IReadingsInbox.SkipReason.BadSignature),
            uint8(IReadingsInbox.SkipReason.DuplicateSequence),
            uint8(IReadingsInbox.SkipReason.FutureTimestamp),
            uint8(IReadingsInbox.SkipReason.UnknownDevice),
            uint8(IReadingsInbox.SkipReason.UnknownDevice),
            uint8(IReadingsInbox.SkipReason.UnboundDevice),
            uint8(IReadingsInbox.SkipReason.MalformedItem),
            uint8(IReadingsInbox.SkipReason.OutsideShipmentWindow)
        ];
        uint256 k;
        uint256 recorded;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IReadingsInbox.ReadingSkipped.selector) {
                (, , uint8 reason) = abi.decode(logs[i].data, (uint32, uint16, uint8));
                vm.assertEq(reason, reasons[k++], "skip reason, in batch order");
            } else if (logs[i].topics[0] == IReadingsInbox.ReadingsRecorded.selector) {
                (, bytes memory records) = abi.decode(logs[i].data, (uint64, bytes));
                recorded += records.length / 12;
            }
        }
        vm.assertEq(k, 8, "exactly k ReadingSkipped events");
        vm.assertEq(recorded, 3, "every valid single reading recorded");
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 7, "readingCount");
        vm.assertTrue(coldChain.isSequenceUsed(DEVICE_A, 13), "window marked");
        vm.assertFalse(coldChain.isSequenceUsed(DEVICE_A, 2), "the badly signed sequence is still free");
    }

    // ================================================================ regressions of bugs this suite found

    /// @notice IShipments: ShipmentDeviceUnavailable for a device "listed twice". Found failing on 1e03fd9:
    /// createShipment accepted [d, d] because the new shipment's status was still None while its devices were
    /// bound (it was set after the loop).
    function test_createShipment_RevertWhen_deviceListedTwice() public {
        registerDevice(DEVICE_A, 300, keyOf("device A"));
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (DEVICE_A, DEVICE_A);
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentDeviceUnavailable.selector, DEVICE_A));
        createShipment(ids);
    }

    /// @notice Device id 0 (never registrable) is an UnknownDevice. Found failing on 1e03fd9: as the batch's
    /// first item it was skipped as BadSignature, because _selectDevice returned early on the empty device
    /// cache (id 0), leaving skip = 0 = BadSignature.
    function test_submitReadings_deviceIdZeroIsUnknownDevice() public {
        BatchEncoder.Reading[] memory r = new BatchEncoder.Reading[](1);
        r[0] = BatchEncoder.Reading(0, 1, uint40(T0), 500, 0);
        bytes memory batch = BatchEncoder.batch(BatchEncoder.signedReadingsItem(domain, keyOf("device 0"), r));
        vm.expectEmit(true, false, false, true, address(coldChain));
        emit IReadingsInbox.ReadingSkipped(0, 1, 1, IReadingsInbox.SkipReason.UnknownDevice);
        coldChain.submitReadings(batch);
    }
}
