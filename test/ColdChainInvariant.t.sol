// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChain} from "../contracts/ColdChain.sol";
import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";
import {MktLib} from "../contracts/libraries/MktLib.sol";

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";
import {Prng} from "./utils/Prng.sol";
import {vaccineProfile} from "./utils/Profiles.sol";
import {TestBase} from "./utils/TestBase.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice The profile the handler's shipments are held to: the 2-8 degrees C vaccine profile with limits short
/// enough for every kind of breach to happen within a run (single excursion 30 min, freeze 20 min, cumulative
/// budget 1 h per device, MKT judged once a device covers 1 h). The handler's model uses these numbers.
function invariantProfile() pure returns (IShipments.TemperatureProfile memory p) {
    p = vaccineProfile();
    p.maxFreezeSeconds = 1200;
    p.maxSingleExcursionSeconds = 1800;
    p.maxCumulativeExcursionSeconds = 3600;
    p.mktMinCoverageSeconds = 3600;
}

/// @title ColdChainHandler
/// @notice Drives a deployed ColdChain through random but well-formed actions for the invariant tests: batches
/// of signed readings, two-step custody handovers (some left pending for a while), starts, deliveries,
/// decisions, cancellations, new shipments for freed devices, and time.
///
/// Each device keeps its own history as a real logger does: it takes readings (single ones or windows) in time
/// order, at most as fast as real time, each naming the one before (`previousObservedAt`); the relayer keeps what
/// is not recorded yet and relays it again while the skip is retryable. Relays come in order, out of order
/// (a newer reading first: SequenceGap until its predecessor is recorded), again (DuplicateSequence), as second
/// histories (a reading naming an older predecessor: StaleSequence) and corrupted (wrong key, tampered, beyond the
/// clock skew, before the start, wrong window interval).
///
/// Every batch is checked on the spot: the handler predicts each item's fate from its ghost state (the chain rule
/// of protocol v2 written from its spec: the device's latest recorded time per shipment, the shipment's window,
/// a pending custody offer, the clock, signatures) and asserts the return values and the exact sequence of
/// ReadingsRecorded / WindowRecorded / ReadingSkipped / BreachRecorded / BreachRunShared events. The ghost applies
/// every accepted reading to a model of the rules written from IReadingsInbox and IShipments (judged per device:
/// gaps, runs, cumulative budget, MKT; charged to the custody period holding its observation time; a breach
/// announced once per device, custody period and kind), which the invariants hold the contract's views to.
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

    /// @notice The handler's copy of a shipment: its status and custody, and the model's condition.
    struct GhostShipment {
        IShipments.ShipmentStatus status;
        uint256 startedAt;
        uint256 deliveredAt;
        address[] custodians;
        uint256[] since;
        uint256[] excursionSeconds;
        uint256[] breachFlags;
        uint64[] deviceIds;
        address offerTo;
        uint256 offerDeadline;
        uint256 offerHandoverAt;
        uint256 readings;
        bool hasTemperature;
        int256 minCentiC;
        int256 maxCentiC;
        uint256 lastObservedAt;
        uint256 cumulativeSeconds;
        uint256 longestRunSeconds;
        uint256 breaches;
        uint256 firstBreach;
        uint256 firstBreachAt;
        uint256 mktSum;
        uint256 mktSeconds;
    }

    /// @notice The model's state of one device in one shipment (the contract's track and evidence).
    struct GhostDevice {
        uint256 lastAt;
        uint256 runStart;
        uint256 freezeStart;
        uint256 cumulativeSeconds;
        uint256 mktSum;
        uint256 mktSeconds;
        bool announcedAny;
        uint256 lastAnnouncedPeriod;
        uint256[] recordedTimes;
    }

    /// @notice A signed item of a device: one reading (one sample) or a window. Part of the device's history, or
    /// a copy made for an attack or a fault (then never kept for relaying again).
    struct Piece {
        bool window;
        uint32 sequence;
        uint40 firstAt;
        uint32 intervalSeconds;
        uint40 previous;
        bytes samples;
        bytes32 sigR;
        bytes32 sigVs;
        bool signatureValid;
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
        address custodian;
        uint256 period;
        uint256 at;
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

    uint256 private constant MAX_FUTURE_SKEW_SECONDS = 300;
    uint256 private constant MAX_CUSTODY_PERIODS = 64;
    uint256 private constant MAX_EXPECTED = 512;
    uint256 private constant MAX_PENDING = 12;
    uint256 private constant ACCEPT = type(uint256).max;

    // The rules of {invariantProfile}, as the model applies them.
    uint256 private constant ADAPTATION_SECONDS = 600;
    int256 private constant MIN_CENTI_C = 200;
    int256 private constant MAX_CENTI_C = 800;
    int256 private constant ABSOLUTE_MIN_CENTI_C = -500;
    int256 private constant ABSOLUTE_MAX_CENTI_C = 2500;
    int256 private constant FREEZE_CENTI_C = -50;
    uint256 private constant MAX_FREEZE_SECONDS = 1200;
    uint256 private constant MAX_SINGLE_SECONDS = 1800;
    uint256 private constant MAX_CUMULATIVE_SECONDS = 3600;
    uint256 private constant MAX_GAP_INTERVALS = 3;
    uint256 private constant FAULT_MASK = 0x05;
    int256 private constant MKT_LIMIT_CENTI_C = 800;
    uint256 private constant MKT_COVERAGE_SECONDS = 3600;

    uint256 private constant EVENT_READINGS = 0;
    uint256 private constant EVENT_WINDOW = 1;
    uint256 private constant EVENT_SKIPPED = 2;
    uint256 private constant EVENT_BREACH = 3;
    uint256 private constant EVENT_RUN_SHARED = 4;

    uint256 private constant NONE = 0;
    uint256 private constant WRONG_KEY = 1;
    uint256 private constant TAMPERED = 2;
    uint256 private constant FUTURE = 3;
    uint256 private constant BEFORE_START = 4;
    uint256 private constant WRONG_INTERVAL = 5;

    /// @notice Id of a device nobody registered.
    uint64 public constant UNKNOWN_DEVICE = 999;

    ColdChain public immutable coldChain;
    bytes32 private immutable domain;
    uint32 private immutable profileId;
    address private immutable shipper;
    address private immutable receiver;
    address private immutable goodsOwner;
    address private immutable relayer;
    address private immutable mktTable;
    uint256 private immutable mktLimitFactor;

    address[] private carriers;
    Device[] private devices;
    Device private unboundDevice;

    uint64[] private shipmentIds;
    mapping(uint64 shipmentId => GhostShipment) private ghosts;
    mapping(uint64 shipmentId => mapping(uint64 deviceId => GhostDevice)) private ghostDevices;
    /// @dev Breach kinds the model announced per shipment, device and custody period.
    mapping(uint64 shipmentId => mapping(uint64 deviceId => mapping(uint256 period => uint256))) private announced;
    mapping(uint64 deviceId => uint64 shipmentId) private boundShipment;
    /// @dev Each device's history: its counter, its latest reading's time, what the relayer still holds (oldest
    /// first) and what was recorded (relayed again now and then).
    mapping(uint64 deviceId => uint32) private sequenceOf;
    mapping(uint64 deviceId => uint256) private takenAt;
    mapping(uint64 deviceId => Piece[]) private pending;
    mapping(uint64 deviceId => Piece[]) private done;
    mapping(uint64 deviceId => uint256) private lastSequence;
    mapping(uint64 shipmentId => uint256) private observedCumulative;

    /// @notice Latest observation time of a (shipment, device) seen in ReadingsRecorded / WindowRecorded events.
    mapping(uint64 shipmentId => mapping(uint64 deviceId => uint256)) public lastRecordedAt;
    /// @notice BreachRecorded events seen per shipment, device, custody period and kind.
    mapping(uint64 shipmentId => mapping(uint64 deviceId => mapping(uint256 period => mapping(uint256 => uint256))))
        public breachEvents;
    /// @notice Breach kinds announced by BreachRecorded events per shipment and custody period (all devices).
    mapping(uint64 shipmentId => mapping(uint256 period => uint256)) public announcedInPeriod;

    /// @notice The handler's clock (block.timestamp after every action).
    uint256 public now_;
    /// @notice Readings recorded for a (shipment, device) at or before one already recorded (must stay 0).
    uint256 public outOfOrderRecordings;
    /// @notice A (shipment, device, period, kind) announced twice by BreachRecorded (must stay 0).
    uint256 public repeatedBreachEvents;
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
    /// @notice Readings recorded after an earlier relay of theirs was skipped as retryable.
    uint256 public retriesRecorded;
    /// @notice Handovers completed, expired offers refused, offers left pending, shipments delivered, decided,
    /// cancelled, started.
    uint256 public handovers;
    uint256 public expiredOffers;
    uint256 public pendingOffers;
    uint256 public deliveries;
    uint256 public decisions;
    uint256 public cancellations;
    /// @notice Times a new shipment took a device of a started, cancelled shipment during the hold (must stay 0).
    uint256 public holdViolations;
    uint256 public starts;
    /// @notice Skipped items by SkipReason.
    mapping(uint256 reason => uint256) public skipsByReason;
    /// @notice BreachRecorded / BreachRunShared events by BreachReason.
    mapping(uint256 reason => uint256) public breachesByReason;
    uint256 public runShares;

    /// @dev Pieces relayed and skipped as retryable, by device and first sequence.
    mapping(uint64 deviceId => mapping(uint256 sequence => bool)) private retried;
    /// @dev What each device's temperature does (0 in range, 1 warm, 2 freezing): it mostly persists.
    mapping(uint64 deviceId => uint256) private mood;

    constructor(Setup memory s) {
        coldChain = s.coldChain;
        domain = s.domain;
        profileId = s.profileId;
        shipper = s.shipper;
        receiver = s.receiver;
        goodsOwner = s.goodsOwner;
        relayer = s.relayer;
        mktTable = s.coldChain.MKT_TABLE();
        mktLimitFactor = MktLib.factorOf(s.coldChain.MKT_TABLE(), MKT_LIMIT_CENTI_C);
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

    /// @notice Submits a batch of 1 to 4 items.
    function submit(uint256 seed) public {
        _sync();
        Prng.Rng memory rng = Prng.init(seed);
        Build memory b;
        b.expected = new Expected[](MAX_EXPECTED);
        uint256 items = rng.between(1, 4);
        for (uint256 i = 0; i < items; ++i) {
            uint256 kind = rng.next() % 100;
            if (kind < 6) _strangerItem(rng, b, Device(UNKNOWN_DEVICE, keyOf("unknown device"), 300));
            else if (kind < 10) _strangerItem(rng, b, unboundDevice);
            else if (kind < 38) _windowItem(rng, b, devices[rng.next() % devices.length]);
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
        if (found) _start(id);
    }

    /// @dev The next leg begins at once: the shipment created last is started.
    function _startLast() private {
        _start(shipmentIds[shipmentIds.length - 1]);
    }

    function _start(uint64 id) private {
        GhostShipment storage g = ghosts[id];
        vm.prank(g.custodians[g.custodians.length - 1]);
        coldChain.startShipment(id);
        g.status = IShipments.ShipmentStatus.InTransit;
        g.startedAt = now_;
        ++starts;
    }

    /// @notice Two-step handover of a created or in-transit shipment to a carrier or (1 in 5, once under way) the
    /// receiver. A
    /// pending offer of the shipment is settled first (accepted, or refused once expired and withdrawn). Of new
    /// offers, 1 in 8 is left to expire and its late acceptance must be refused, and 2 in 5 of the others are left
    /// pending until a later handOver (readings from its boundary on wait meanwhile: CustodyPending).
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
        if (g.offerTo != address(0)) {
            address offered = g.offerTo;
            uint256 handoverAt = g.offerHandoverAt;
            if (now_ <= g.offerDeadline) {
                vm.prank(offered);
                coldChain.acceptCustody(id);
                _clearOffer(g);
                _recordHandover(g, offered, handoverAt);
                if (g.status == IShipments.ShipmentStatus.Delivered && rng.chance(50)) _decide(id, rng.next());
                return;
            }
            _refuseExpired(id, from, offered);
            _clearOffer(g);
        }
        // A shipment under way goes to the receiver 1 time in 5; a created one first to a carrier.
        bool deliver = g.status == IShipments.ShipmentStatus.InTransit && rng.chance(20);
        address to = deliver ? receiver : carriers[rng.next() % carriers.length];
        // The last custody period is kept for the receiver.
        if (to == from || g.custodians.length >= MAX_CUSTODY_PERIODS - 1) to = receiver;
        // 1 in 8 offers expires, 2 in 5 of the others are left pending (with a longer deadline).
        uint256 mode = rng.chance(12) ? 0 : (rng.chance(40) ? 1 : 2);
        uint256 deadline = now_ + (mode == 1 ? rng.between(1 hours, 6 hours) : rng.between(0, 2 hours));
        vm.prank(from);
        coldChain.offerCustody(id, to, uint40(deadline));
        // The boundary is fixed by the offer: its block time, or one second after the latest reading recorded.
        uint256 boundary = g.lastObservedAt >= now_ ? g.lastObservedAt + 1 : now_;
        vm.assertEq(coldChain.custodyOffer(id).handoverAt, boundary, "handoverAt");
        vm.assertGe(boundary, g.since[g.since.length - 1], "boundary before the previous one");
        if (mode == 0) {
            _advance(deadline - now_ + bound(waitSeconds, 1, 1 hours));
            _refuseExpired(id, from, to);
            return;
        }
        if (mode == 1) {
            (g.offerTo, g.offerDeadline, g.offerHandoverAt) = (to, deadline, boundary);
            ++pendingOffers;
            return;
        }
        _advance(bound(waitSeconds, 0, deadline - now_));
        vm.prank(to);
        coldChain.acceptCustody(id);
        _recordHandover(g, to, boundary);
        // Half of the deliveries are decided at once (the devices go on their next shipment).
        if (g.status == IShipments.ShipmentStatus.Delivered && rng.chance(50)) _decide(id, rng.next());
    }

    /// @notice The receiver (or QA) releases or rejects a delivered shipment; its devices go on a new one (started
    /// at once half of the time).
    function decide(uint256 seed) external {
        _sync();
        (bool found, uint64 id) = _pick(seed, IShipments.ShipmentStatus.Delivered, IShipments.ShipmentStatus.Delivered);
        if (found) _decide(id, seed);
    }

    function _decide(uint64 id, uint256 seed) private {
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
        if (seed % 4 < 2) _startLast();
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
        _clearOffer(g); // a cancellation deletes the pending offer
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
        if ((seed >> 8) % 2 == 0) _startLast();
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

    /// @notice The model's state of a device in a shipment.
    function ghostDevice(uint64 shipmentId, uint64 deviceId) external view returns (GhostDevice memory) {
        return ghostDevices[shipmentId][deviceId];
    }

    /// @notice Breach kinds the model announced for a device in a custody period of a shipment.
    function announcedFor(uint64 shipmentId, uint64 deviceId, uint256 period) external view returns (uint256) {
        return announced[shipmentId][deviceId][period];
    }

    /// @notice The shipment a device is bound to.
    function shipmentOf(uint64 deviceId) external view returns (uint64) {
        return boundShipment[deviceId];
    }

    /// @notice The sequence of the latest reading of the device the model recorded (in any shipment).
    function lastSequenceOf(uint64 deviceId) external view returns (uint256) {
        return lastSequence[deviceId];
    }

    /// @notice Observation times of the readings the relayer still holds for a device (not recorded).
    function pendingTimes(uint64 deviceId) external view returns (uint256[] memory times) {
        Piece[] storage held = pending[deviceId];
        times = new uint256[](held.length);
        for (uint256 i = 0; i < held.length; ++i) times[i] = held[i].firstAt;
    }

    /// @notice The highest cumulative excursion this handler has seen for a shipment.
    function cumulativeSeen(uint64 shipmentId) external view returns (uint256) {
        return observedCumulative[shipmentId];
    }

    /// @notice Whether the pooled MKT of a shipment's model is above the limit (judged once it covers enough).
    function modelMktAbove(uint64 shipmentId) external view returns (bool) {
        GhostShipment storage g = ghosts[shipmentId];
        return g.mktSeconds >= MKT_COVERAGE_SECONDS && g.mktSum > mktLimitFactor * g.mktSeconds;
    }

    // ================================================================ items

    /// @dev A READINGS item of 1 to 6 readings of a bound device.
    function _readingsItem(Prng.Rng memory rng, Build memory b, Device memory dev) private {
        uint256 n = rng.between(1, 6);
        ++readingsItems;
        bytes memory body;
        for (uint256 i = 0; i < n; ++i) body = bytes.concat(body, _readingSlot(rng, b, dev));
        b.items = bytes.concat(b.items, BatchEncoder.readingsItem(dev.id, uint16(n), body));
        _closeReadingsItem(b, dev.id);
    }

    /// @dev A READINGS item of 1 to 3 readings of a device that is unknown or bound to nothing.
    function _strangerItem(Prng.Rng memory rng, Build memory b, Device memory dev) private {
        uint256 n = rng.between(1, 3);
        ++readingsItems;
        bytes memory body;
        for (uint256 i = 0; i < n; ++i) {
            Piece memory p = _newPiece(rng, dev, false, 1, now_ - rng.between(0, 3600), 0);
            _sign(dev, p, dev.key);
            body = bytes.concat(body, _relayReading(b, dev, p));
        }
        b.items = bytes.concat(b.items, BatchEncoder.readingsItem(dev.id, uint16(n), body));
        _closeReadingsItem(b, dev.id);
    }

    /// @dev The item's accepted readings follow its skips and breaches in one ReadingsRecorded.
    function _closeReadingsItem(Build memory b, uint64 deviceId) private view {
        if (b.records.length == 0) return;
        Expected memory e = _next(b);
        (e.kind, e.deviceId, e.shipmentId) = (EVENT_READINGS, deviceId, boundShipment[deviceId]);
        (e.count, e.records) = (b.records.length / 12, b.records);
        b.records = "";
    }

    /// @dev One reading of a READINGS item: from the device's history (the oldest one held, or one taken now,
    /// maybe after holding back the one before it), a recorded one again, a second history, or a corrupted copy.
    function _readingSlot(Prng.Rng memory rng, Build memory b, Device memory dev) private returns (bytes memory) {
        uint256 roll = rng.next() % 100;
        if (roll < 10) return _corruptedReading(rng, b, dev, 1 + (rng.next() % 4));
        (bool hasDone, uint256 doneIndex) = _doneOf(rng, dev.id, false);
        if (roll < 14 && hasDone) return _relayReading(b, dev, done[dev.id][doneIndex]);
        if (roll < 21 && ghostDevices[boundShipment[dev.id]][dev.id].lastAt != 0) return _secondHistory(rng, b, dev);
        bool headIsReading = pending[dev.id].length != 0 && !pending[dev.id][0].window;
        if (headIsReading && roll < 60) return _relayPending(b, dev, 0);
        (bool taken, ) = _take(rng, dev, false, 1);
        if (taken) {
            // Now and then the one taken now is held back and the next one relayed first.
            if (rng.chance(15)) _take(rng, dev, false, 1);
            return _relayPending(b, dev, pending[dev.id].length - 1);
        }
        // Nothing new to relay: a recorded reading again, or a corrupted one.
        if (headIsReading) return _relayPending(b, dev, 0);
        if (hasDone && rng.chance(30)) return _relayReading(b, dev, done[dev.id][doneIndex]);
        return _corruptedReading(rng, b, dev, 1 + (rng.next() % 4));
    }

    /// @dev A WINDOW item of a bound device: from its history (the oldest one held, or 2 to 8 readings taken
    /// now), a recorded window again, or a corrupted one.
    function _windowItem(Prng.Rng memory rng, Build memory b, Device memory dev) private {
        ++windowItems;
        uint256 roll = rng.next() % 100;
        (bool hasDone, uint256 doneIndex) = _doneOf(rng, dev.id, true);
        bool headIsWindow = pending[dev.id].length != 0 && pending[dev.id][0].window;
        if (roll < 15) {
            _corruptedWindow(rng, b, dev, 1 + (rng.next() % 5));
        } else if (roll < 19 && hasDone) {
            _relayWindow(b, dev, done[dev.id][doneIndex]);
        } else if (headIsWindow && roll < 65) {
            _relayPendingWindow(b, dev, 0);
        } else {
            (bool taken, ) = _take(rng, dev, true, rng.between(2, 8));
            if (taken) _relayPendingWindow(b, dev, pending[dev.id].length - 1);
            else if (headIsWindow) _relayPendingWindow(b, dev, 0);
            else _corruptedWindow(rng, b, dev, 1 + (rng.next() % 5));
        }
    }

    /// @dev A reading not of the device's history, always skipped: signed with another key, tampered with after
    /// signing, observed beyond the tolerated clock lead, or before the shipment's start.
    function _corruptedReading(
        Prng.Rng memory rng,
        Build memory b,
        Device memory dev,
        uint256 corruption
    ) private returns (bytes memory) {
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        if (corruption == BEFORE_START && g.startedAt == 0) corruption = WRONG_KEY;
        uint256 latest = takenAt[dev.id];
        uint256 at = latest == 0 ? now_ : latest + dev.intervalSeconds;
        uint256 previous = latest;
        if (corruption == FUTURE) at = now_ + MAX_FUTURE_SKEW_SECONDS + rng.between(1, 3600);
        if (corruption == BEFORE_START) (at, previous) = (g.startedAt - rng.between(1, 3600), 0);
        Piece memory p = _newPiece(rng, dev, false, 1, at, previous);
        _sign(dev, p, corruption == WRONG_KEY ? dev.key ^ 1 : dev.key);
        if (corruption == TAMPERED) p.samples[1] ^= 0x01; // signed one temperature, sends another
        p.signatureValid = corruption != WRONG_KEY && corruption != TAMPERED;
        return _relayCorrupted(b, dev, p);
    }

    /// @dev A reading of a second history of the device (it lost its state, or signed two): observed after its
    /// latest recorded reading, naming an older predecessor (or none). Always skipped.
    function _secondHistory(Prng.Rng memory rng, Build memory b, Device memory dev) private returns (bytes memory) {
        uint256 last = ghostDevices[boundShipment[dev.id]][dev.id].lastAt;
        uint256 previous = rng.chance(30) ? 0 : last - rng.between(1, 3 * dev.intervalSeconds);
        Piece memory p = _newPiece(rng, dev, false, 1, last + rng.between(1, dev.intervalSeconds), previous);
        _sign(dev, p, dev.key);
        return _relayCorrupted(b, dev, p);
    }

    /// @dev Relays a reading made to be skipped, and checks the prediction agrees.
    function _relayCorrupted(Build memory b, Device memory dev, Piece memory p) private returns (bytes memory encoded) {
        uint256 reason;
        (reason, encoded) = _relayReadingWithReason(b, dev, p);
        _expectCorrupted(b, reason);
    }

    /// @dev A window not of the device's history, always skipped (the corruptions of {_corruptedReading}, or an
    /// interval other than the device's).
    function _corruptedWindow(Prng.Rng memory rng, Build memory b, Device memory dev, uint256 corruption) private {
        GhostShipment storage g = ghosts[boundShipment[dev.id]];
        if (corruption == BEFORE_START && g.startedAt == 0) corruption = WRONG_KEY;
        uint256 count = rng.between(2, 8);
        uint256 interval = corruption == WRONG_INTERVAL ? dev.intervalSeconds + 1 : dev.intervalSeconds;
        uint256 span = (count - 1) * interval;
        uint256 latest = takenAt[dev.id];
        uint256 first = latest == 0 ? now_ - span : latest + interval;
        uint256 previous = latest;
        if (corruption == FUTURE) first = now_ + MAX_FUTURE_SKEW_SECONDS + rng.between(1, 3600) - span;
        if (corruption == BEFORE_START) (first, previous) = (g.startedAt - rng.between(1, 3600) - span, 0);
        Piece memory p = _newPiece(rng, dev, true, count, first, previous);
        p.intervalSeconds = uint32(interval);
        _sign(dev, p, corruption == WRONG_KEY ? dev.key ^ 1 : dev.key);
        if (corruption == TAMPERED) p.samples[0] ^= 0x01;
        p.signatureValid = corruption != WRONG_KEY && corruption != TAMPERED;
        _expectCorrupted(b, _relayWindow(b, dev, p));
    }

    // ================================================================ the devices' histories

    /// @dev The device takes `count` readings (one, or a window) now: one interval after its latest one, now and
    /// then after a few lost intervals; from about now when it never took one, is hours behind, or (rarely)
    /// jumps. Never ahead of real time but for a clock lead within the skew. Returns false when it has nothing
    /// new to take yet (or the relayer holds too much already).
    function _take(
        Prng.Rng memory rng,
        Device memory dev,
        bool window,
        uint256 count
    ) private returns (bool taken, Piece memory p) {
        if (pending[dev.id].length >= MAX_PENDING) return (false, p);
        uint256 interval = dev.intervalSeconds;
        uint256 latest = takenAt[dev.id];
        uint256 span = (count - 1) * interval;
        uint256 first = latest == 0 ? 0 : latest + interval * (rng.chance(6) ? rng.between(2, 5) : 1);
        if (latest == 0 || first + span + 2 hours < now_ || rng.chance(4)) {
            uint256 jump = now_ - rng.between(0, 1800) - span;
            if (jump > first) first = jump;
        }
        uint256 lead = rng.chance(10) ? rng.between(0, MAX_FUTURE_SKEW_SECONDS) : 0;
        if (first + span > now_ + lead) return (false, p);
        p = _newPiece(rng, dev, window, count, first, latest);
        p.sequence = sequenceOf[dev.id] + 1;
        sequenceOf[dev.id] += uint32(count);
        takenAt[dev.id] = first + span;
        _sign(dev, p, dev.key);
        pending[dev.id].push(p);
        taken = true;
    }

    /// @dev A piece of `count` random samples from `first` on, naming `previous`; its sequence is random (the
    /// chain is by time), {_take} sets the real one.
    function _newPiece(
        Prng.Rng memory rng,
        Device memory dev,
        bool window,
        uint256 count,
        uint256 first,
        uint256 previous
    ) private returns (Piece memory p) {
        p.window = window;
        p.sequence = uint32(rng.between(1, 1_000_000));
        p.firstAt = uint40(first);
        p.intervalSeconds = dev.intervalSeconds;
        p.previous = uint40(previous);
        for (uint256 i = 0; i < count; ++i) {
            p.samples = bytes.concat(p.samples, abi.encodePacked(_pickTemperature(rng, dev.id), _pickFlags(rng)));
        }
        p.signatureValid = true;
    }

    function _sign(Device memory dev, Piece memory p, uint256 key) private view {
        bytes32 digest =
            p.window
                ? BatchEncoder.windowDigest(
                    domain,
                    dev.id,
                    p.sequence,
                    p.firstAt,
                    p.intervalSeconds,
                    p.samples,
                    p.previous
                )
                : BatchEncoder.readingDigest(domain, _asReading(dev.id, p));
        (p.sigR, p.sigVs) = BatchEncoder.signCompact(key, digest);
    }

    function _asReading(uint64 deviceId, Piece memory p) private pure returns (BatchEncoder.Reading memory) {
        return
            BatchEncoder.Reading({
                deviceId: deviceId,
                sequence: p.sequence,
                observedAt: p.firstAt,
                tempCentiC: int16(uint16(bytes2(bytes.concat(p.samples[0], p.samples[1])))),
                flags: uint8(p.samples[2]),
                previousObservedAt: p.previous
            });
    }

    /// @dev A recorded piece of the device (a window or a single reading), among the latest 20.
    function _doneOf(Prng.Rng memory rng, uint64 deviceId, bool window) private view returns (bool, uint256) {
        Piece[] storage list = done[deviceId];
        uint256 n = list.length;
        uint256 m = _min(n, 20);
        uint256 offset = m == 0 ? 0 : rng.next() % m;
        for (uint256 k = 0; k < m; ++k) {
            uint256 i = n - 1 - ((offset + k) % m);
            if (list[i].window == window) return (true, i);
        }
        return (false, 0);
    }

    /// @dev Relays the held reading `index` of the device; keeps it while its skip is retryable.
    function _relayPending(Build memory b, Device memory dev, uint256 index) private returns (bytes memory encoded) {
        Piece memory p = pending[dev.id][index];
        uint256 reason;
        (reason, encoded) = _relayReadingWithReason(b, dev, p);
        _settle(dev.id, index, p, reason);
    }

    /// @dev Relays the held window `index` of the device; keeps it while its skip is retryable.
    function _relayPendingWindow(Build memory b, Device memory dev, uint256 index) private {
        Piece memory p = pending[dev.id][index];
        _settle(dev.id, index, p, _relayWindow(b, dev, p));
    }

    /// @dev What the relayer does with a held piece after relaying it: drops it once recorded or finally skipped,
    /// keeps it while the skip is retryable (SequenceGap, FutureTimestamp, CustodyPending, or an inactive shipment
    /// that may still start).
    function _settle(uint64 deviceId, uint256 index, Piece memory p, uint256 reason) private {
        bool retryable =
            reason == uint256(IReadingsInbox.SkipReason.SequenceGap) ||
                reason == uint256(IReadingsInbox.SkipReason.FutureTimestamp) ||
                reason == uint256(IReadingsInbox.SkipReason.CustodyPending) ||
                reason == uint256(IReadingsInbox.SkipReason.ShipmentNotActive);
        if (retryable) {
            retried[deviceId][p.sequence] = true;
            return;
        }
        if (reason == ACCEPT) {
            if (retried[deviceId][p.sequence]) ++retriesRecorded;
            done[deviceId].push(p);
        }
        Piece[] storage held = pending[deviceId];
        for (uint256 i = index; i + 1 < held.length; ++i) held[i] = held[i + 1];
        held.pop();
    }

    // ================================================================ relaying: prediction and expected events

    function _relayReading(Build memory b, Device memory dev, Piece memory p) private returns (bytes memory encoded) {
        (, encoded) = _relayReadingWithReason(b, dev, p);
    }

    /// @dev Predicts a single reading's fate, expects its events (a skip, or its breaches) and applies it to the
    /// model if accepted; returns its 81 bytes.
    function _relayReadingWithReason(
        Build memory b,
        Device memory dev,
        Piece memory p
    ) private returns (uint256 reason, bytes memory encoded) {
        (reason, , ) = _predict(dev, p);
        BatchEncoder.Reading memory r = _asReading(dev.id, p);
        if (reason == ACCEPT) {
            ++b.accepted;
            b.records = bytes.concat(b.records, BatchEncoder.readingRecord(r));
            _applyPiece(b, dev, p, 0, 1);
        } else {
            _expectSkip(b, dev.id, p.sequence, 1, reason);
        }
        encoded = BatchEncoder.encodeReading(r, p.sigR, p.sigVs);
    }

    /// @dev As {_relayReadingWithReason} for a window: the samples outside the shipment are skipped first, then
    /// the breaches of the inside ones, then WindowRecorded. Appends the item to the batch.
    function _relayWindow(Build memory b, Device memory dev, Piece memory p) private returns (uint256 reason) {
        uint256 from;
        uint256 until;
        (reason, from, until) = _predict(dev, p);
        uint256 count = p.samples.length / 3;
        if (reason == ACCEPT) {
            uint256 outside = uint256(IReadingsInbox.SkipReason.OutsideShipmentWindow);
            if (from != 0) _expectSkip(b, dev.id, p.sequence, from, outside);
            if (until != count) _expectSkip(b, dev.id, p.sequence + until, count - until, outside);
            _applyPiece(b, dev, p, from, until);
            Expected memory e = _next(b);
            (e.kind, e.deviceId, e.shipmentId) = (EVENT_WINDOW, dev.id, boundShipment[dev.id]);
            (e.sequence, e.count, e.at) = (p.sequence + from, until - from, p.firstAt + from * p.intervalSeconds);
            e.records = _slice(p.samples, 3 * from, 3 * until);
            b.accepted += until - from;
        } else {
            _expectSkip(b, dev.id, p.sequence, count, reason);
        }
        b.items = bytes.concat(
            b.items,
            BatchEncoder.windowItem(
                dev.id,
                p.sequence,
                p.firstAt,
                p.intervalSeconds,
                p.samples,
                p.previous,
                p.sigR,
                p.sigVs
            )
        );
    }

    function _expectCorrupted(Build memory b, uint256 reason) private pure {
        ++b.corrupted;
        vm.assertTrue(reason != ACCEPT, "a corrupted item would be accepted: generator error");
    }

    function _expectSkip(Build memory b, uint64 deviceId, uint256 sequence, uint256 count, uint256 reason) private {
        Expected memory e = _next(b);
        (e.kind, e.deviceId, e.sequence, e.count, e.reason) = (EVENT_SKIPPED, deviceId, sequence, count, reason);
        b.skipped += count;
        ++skipsByReason[reason];
    }

    function _next(Build memory b) private pure returns (Expected memory e) {
        vm.assertLt(b.n, MAX_EXPECTED, "too many events for one batch: generator error");
        e = b.expected[b.n++];
    }

    /// @dev Why the inbox skips a piece (in its order of checks), or ACCEPT with the samples [from, until) inside
    /// the shipment. Written from IReadingsInbox and the protocol v2 spec: device, item form, signature, clock,
    /// shipment window, pending custody offer, then the chain (the device's latest recorded reading here).
    function _predict(Device memory dev, Piece memory p) private view returns (uint256, uint256, uint256) {
        uint256 reason = _deviceSkip(dev.id);
        if (reason != ACCEPT) return (reason, 0, 0);
        uint256 count = p.samples.length / 3;
        uint256 interval = p.intervalSeconds;
        if (p.window && (count == 0 || count > 256 || interval != dev.intervalSeconds)) {
            return (uint256(IReadingsInbox.SkipReason.MalformedItem), 0, 0);
        }
        if (!p.signatureValid) return (uint256(IReadingsInbox.SkipReason.BadSignature), 0, 0);
        if (p.firstAt + (count - 1) * interval > now_ + MAX_FUTURE_SKEW_SECONDS) {
            return (uint256(IReadingsInbox.SkipReason.FutureTimestamp), 0, 0);
        }
        uint64 id = boundShipment[dev.id];
        GhostShipment storage g = ghosts[id];
        bool held = _offerLive(g);
        // A created shipment with a pending offer starts at its boundary (nothing before it is inside).
        uint256 startsAt = g.status == IShipments.ShipmentStatus.Created ? g.offerHandoverAt : g.startedAt;
        // The samples observed from the start to the end (delivery or cancellation), both included.
        uint256 from;
        uint256 until = count;
        while (from < count && p.firstAt + from * interval < startsAt) ++from;
        while (until > from && g.deliveredAt != 0 && p.firstAt + (until - 1) * interval > g.deliveredAt) --until;
        if (from == until) return (uint256(IReadingsInbox.SkipReason.OutsideShipmentWindow), 0, 0);
        if (held && p.firstAt + (until - 1) * interval >= g.offerHandoverAt) {
            return (uint256(IReadingsInbox.SkipReason.CustodyPending), 0, 0);
        }
        // The chain: the device's next reading names its latest recorded one; the first one here names one
        // before the start.
        uint256 last = ghostDevices[id][dev.id].lastAt;
        if (p.firstAt <= last) return (uint256(IReadingsInbox.SkipReason.DuplicateSequence), 0, 0);
        if (last == 0 ? p.previous < startsAt : p.previous == last) return (ACCEPT, from, until);
        if (p.previous > last) return (uint256(IReadingsInbox.SkipReason.SequenceGap), 0, 0);
        return (uint256(IReadingsInbox.SkipReason.StaleSequence), 0, 0);
    }

    function _deviceSkip(uint64 deviceId) private view returns (uint256) {
        if (deviceId == UNKNOWN_DEVICE) return uint256(IReadingsInbox.SkipReason.UnknownDevice);
        uint64 id = boundShipment[deviceId];
        if (id == 0) return uint256(IReadingsInbox.SkipReason.UnboundDevice);
        GhostShipment storage g = ghosts[id];
        IShipments.ShipmentStatus status = g.status;
        bool cancelledAfterStart = status == IShipments.ShipmentStatus.Cancelled && g.startedAt != 0;
        bool starting = status == IShipments.ShipmentStatus.Created && _offerLive(g);
        if (
            status != IShipments.ShipmentStatus.InTransit &&
            status != IShipments.ShipmentStatus.Delivered &&
            !cancelledAfterStart &&
            !starting
        ) {
            return uint256(IReadingsInbox.SkipReason.ShipmentNotActive);
        }
        return ACCEPT;
    }

    function _offerLive(GhostShipment storage g) private view returns (bool) {
        return g.offerTo != address(0) && now_ <= g.offerDeadline;
    }

    // ================================================================ the model of the rules

    /// @dev Applies the samples [from, until) of an accepted piece to the model, in order.
    function _applyPiece(Build memory b, Device memory dev, Piece memory p, uint256 from, uint256 until) private {
        for (uint256 i = from; i < until; ++i) {
            int256 temp = int16(uint16(bytes2(bytes.concat(p.samples[3 * i], p.samples[3 * i + 1]))));
            uint256 at = p.firstAt + i * p.intervalSeconds;
            _ghostApply(b, dev, p.sequence + i, at, temp, uint8(p.samples[3 * i + 2]));
        }
    }

    /// @dev One accepted reading, from IReadingsInbox and IShipments.TemperatureProfile (rules of
    /// {invariantProfile}): it stands for the device's interval; missing data is a gap of more than
    /// maxGapIntervals intervals since the device's previous reading here (or the start); faults by the mask;
    /// temperatures evaluated from startedAt + adaptation unless flagged 0x01: absolute limits, MKT (pooled in the
    /// shipment, judged on the device's own sums once they cover the minimum), range (the device's runs and its own
    /// cumulative budget), freeze. What it raises and its excursion time are charged to the custody period holding
    /// its observation time; each kind new to the device in that period is announced (BreachRecorded), and a run
    /// crossing its limit that began in an earlier period is shared (BreachRunShared).
    function _ghostApply(
        Build memory b,
        Device memory dev,
        uint256 sequence,
        uint256 at,
        int256 temp,
        uint256 flags
    ) private {
        uint64 id = boundShipment[dev.id];
        GhostShipment storage g = ghosts[id];
        GhostDevice storage gd = ghostDevices[id][dev.id];
        uint256 interval = dev.intervalSeconds;
        uint256 breaches;
        uint256 excursion;
        g.readings += 1;
        if (at > g.lastObservedAt) g.lastObservedAt = at;
        uint256 since = gd.lastAt != 0 ? gd.lastAt : g.startedAt;
        if (at - since > MAX_GAP_INTERVALS * interval) breaches |= _bit(IReadingsInbox.BreachReason.MissingData);
        gd.lastAt = at;
        gd.recordedTimes.push(at);
        lastSequence[dev.id] = sequence;
        if (flags & FAULT_MASK != 0) breaches |= _bit(IReadingsInbox.BreachReason.DeviceFault);
        if (flags & 0x01 == 0 && at >= g.startedAt + ADAPTATION_SECONDS) {
            uint256 raised;
            (raised, excursion) = _ghostTemperature(g, gd, interval, at, temp);
            breaches |= raised;
        }
        if (breaches != 0) {
            uint256 reason = _lowest(breaches);
            bool earlier = g.firstBreachAt == 0 || at < g.firstBreachAt;
            if (earlier || (at == g.firstBreachAt && reason < g.firstBreach))
                (g.firstBreach, g.firstBreachAt) = (reason, at);
            g.breaches |= breaches;
        }
        if (breaches == 0 && excursion == 0) return;
        uint256 period = _periodAt(g, at);
        if (period != g.since.length - 1) ++lateCharges;
        g.excursionSeconds[period] += excursion;
        g.breachFlags[period] |= breaches;
        uint256 fresh = breaches & ~announced[id][dev.id][period];
        if (fresh == 0) return;
        announced[id][dev.id][period] |= fresh;
        (gd.announcedAny, gd.lastAnnouncedPeriod) = (true, period);
        for (uint256 reason = 1; reason < 8; ++reason) {
            if (fresh & (1 << reason) == 0) continue;
            Expected memory e = _next(b);
            (e.kind, e.shipmentId, e.deviceId, e.reason) = (EVENT_BREACH, id, dev.id, reason);
            (e.custodian, e.period, e.sequence, e.at) = (g.custodians[period], period, sequence, at);
        }
        uint256 single = uint256(IReadingsInbox.BreachReason.SingleExcursion);
        uint256 freeze = uint256(IReadingsInbox.BreachReason.Freeze);
        if (fresh & (1 << single) != 0) _expectRunShared(b, id, dev.id, single, gd.runStart, at + interval, period);
        if (fresh & (1 << freeze) != 0) _expectRunShared(b, id, dev.id, freeze, gd.freezeStart, at + interval, period);
    }

    /// @dev The evaluated part of {_ghostApply}; returns the breaches and the excursion seconds.
    function _ghostTemperature(
        GhostShipment storage g,
        GhostDevice storage gd,
        uint256 interval,
        uint256 at,
        int256 temp
    ) private returns (uint256 breaches, uint256 excursion) {
        if (!g.hasTemperature || temp < g.minCentiC) g.minCentiC = temp;
        if (!g.hasTemperature || temp > g.maxCentiC) g.maxCentiC = temp;
        g.hasTemperature = true;
        if (temp < ABSOLUTE_MIN_CENTI_C || temp > ABSOLUTE_MAX_CENTI_C) {
            breaches |= _bit(IReadingsInbox.BreachReason.AbsoluteLimit);
        }
        uint256 weighted = interval * MktLib.factorOf(mktTable, temp);
        (g.mktSum, g.mktSeconds) = (g.mktSum + weighted, g.mktSeconds + interval);
        (gd.mktSum, gd.mktSeconds) = (gd.mktSum + weighted, gd.mktSeconds + interval);
        if (gd.mktSeconds >= MKT_COVERAGE_SECONDS && gd.mktSum > mktLimitFactor * gd.mktSeconds) {
            breaches |= _bit(IReadingsInbox.BreachReason.MktExceeded);
        }
        if (temp < MIN_CENTI_C || temp > MAX_CENTI_C) {
            excursion = interval;
            g.cumulativeSeconds += interval;
            gd.cumulativeSeconds += interval;
            if (gd.cumulativeSeconds >= MAX_CUMULATIVE_SECONDS) {
                breaches |= _bit(IReadingsInbox.BreachReason.CumulativeExcursion);
            }
            if (gd.runStart == 0) gd.runStart = at;
            uint256 run = at + interval - gd.runStart;
            if (run > g.longestRunSeconds) g.longestRunSeconds = run;
            if (run >= MAX_SINGLE_SECONDS) breaches |= _bit(IReadingsInbox.BreachReason.SingleExcursion);
        } else {
            gd.runStart = 0;
        }
        if (temp <= FREEZE_CENTI_C) {
            if (gd.freezeStart == 0) gd.freezeStart = at;
            if (at + interval - gd.freezeStart >= MAX_FREEZE_SECONDS) {
                breaches |= _bit(IReadingsInbox.BreachReason.Freeze);
            }
        } else {
            gd.freezeStart = 0;
        }
    }

    /// @dev BreachRunShared for each custody period a run [runStart, runEnd) spans, when it began before the
    /// period `crossing` where it crossed its limit: from that period back to the one holding its start.
    function _expectRunShared(
        Build memory b,
        uint64 id,
        uint64 deviceId,
        uint256 reason,
        uint256 runStart,
        uint256 runEnd,
        uint256 crossing
    ) private view {
        GhostShipment storage g = ghosts[id];
        if (runStart >= g.since[crossing]) return;
        uint256 periodEnd = runEnd;
        for (uint256 p = crossing + 1; p > 0;) {
            --p;
            uint256 from = g.since[p] > runStart ? g.since[p] : runStart;
            Expected memory e = _next(b);
            (e.kind, e.shipmentId, e.deviceId, e.reason) = (EVENT_RUN_SHARED, id, deviceId, reason);
            (e.custodian, e.period, e.at) = (g.custodians[p], p, periodEnd - from);
            if (g.since[p] <= runStart) break;
            periodEnd = g.since[p];
        }
    }

    /// @dev The custody period holding `at`: the last one that began at or before it.
    function _periodAt(GhostShipment storage g, uint256 at) private view returns (uint256 period) {
        for (uint256 i = 0; i < g.since.length; ++i) if (g.since[i] <= at) period = i;
    }

    function _bit(IReadingsInbox.BreachReason reason) private pure returns (uint256) {
        return 1 << uint256(reason);
    }

    function _lowest(uint256 breaches) private pure returns (uint256 reason) {
        reason = 1;
        while (breaches & (1 << reason) == 0) ++reason;
    }

    // ================================================================ submitting and matching the events

    function _submitAndCheck(Build memory b) private {
        vm.recordLogs();
        vm.prank(relayer);
        (uint256 acceptedCount, uint256 skippedCount) = coldChain.submitReadings(BatchEncoder.batch(b.items));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(acceptedCount, b.accepted, "accepted");
        vm.assertEq(skippedCount, b.skipped, "skipped");
        uint256 j = _matchLogs(logs, b);
        vm.assertEq(j, b.n, "events: every one predicted, in order");
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
            bool known =
                topic == IReadingsInbox.ReadingsRecorded.selector ||
                    topic == IReadingsInbox.WindowRecorded.selector ||
                    topic == IReadingsInbox.ReadingSkipped.selector ||
                    topic == IReadingsInbox.BreachRecorded.selector ||
                    topic == IReadingsInbox.BreachRunShared.selector;
            if (!known) continue;
            vm.assertLt(j, b.n, "an event the model does not predict");
            Expected memory e = b.expected[j++];
            if (topic == IReadingsInbox.ReadingsRecorded.selector) _matchReadings(log, e);
            else if (topic == IReadingsInbox.WindowRecorded.selector) _matchWindow(log, e);
            else if (topic == IReadingsInbox.ReadingSkipped.selector) _matchSkipped(log, e);
            else if (topic == IReadingsInbox.BreachRecorded.selector) _matchBreach(log, e);
            else _matchRunShared(log, e);
        }
    }

    function _matchReadings(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_READINGS, "expected another event than ReadingsRecorded");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "ReadingsRecorded.shipmentId");
        (uint64 deviceId, bytes memory records) = abi.decode(log.data, (uint64, bytes));
        vm.assertEq(deviceId, e.deviceId, "ReadingsRecorded.deviceId");
        vm.assertEq(keccak256(records), keccak256(e.records), "ReadingsRecorded.readings");
        for (uint256 i = 0; i < records.length; i += 12) {
            uint256 at;
            for (uint256 k = 4; k < 9; ++k) at = (at << 8) | uint8(records[i + k]);
            _countRecorded(e.shipmentId, deviceId, at);
        }
    }

    function _matchWindow(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_WINDOW, "expected another event than WindowRecorded");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "WindowRecorded.shipmentId");
        (uint64 deviceId, uint32 firstSequence, uint40 firstAt, uint32 interval, bytes memory samples) = abi.decode(
            log.data,
            (uint64, uint32, uint40, uint32, bytes)
        );
        vm.assertEq(deviceId, e.deviceId, "WindowRecorded.deviceId");
        vm.assertEq(firstSequence, e.sequence, "WindowRecorded.firstSequence");
        vm.assertEq(firstAt, e.at, "WindowRecorded.firstObservedAt");
        vm.assertEq(keccak256(samples), keccak256(e.records), "WindowRecorded.samples");
        for (uint256 i = 0; i < samples.length / 3; ++i) _countRecorded(e.shipmentId, deviceId, firstAt + i * interval);
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

    function _matchBreach(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_BREACH, "a breach was announced that the model does not raise");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "BreachRecorded.shipmentId");
        vm.assertEq(log.topics[2], bytes32(uint256(uint160(e.custodian))), "BreachRecorded.custodian");
        (uint8 reason, uint32 period, uint64 deviceId, uint32 sequence, uint40 at) = abi.decode(
            log.data,
            (uint8, uint32, uint64, uint32, uint40)
        );
        vm.assertEq(reason, e.reason, "BreachRecorded.reason");
        vm.assertEq(period, e.period, "BreachRecorded.periodIndex");
        vm.assertEq(deviceId, e.deviceId, "BreachRecorded.deviceId");
        vm.assertEq(sequence, e.sequence, "BreachRecorded.sequence");
        vm.assertEq(at, e.at, "BreachRecorded.observedAt");
        if (++breachEvents[e.shipmentId][deviceId][period][reason] > 1) ++repeatedBreachEvents;
        announcedInPeriod[e.shipmentId][period] |= 1 << reason;
        ++breachesByReason[reason];
    }

    function _matchRunShared(Vm.Log memory log, Expected memory e) private {
        vm.assertEq(e.kind, EVENT_RUN_SHARED, "a run was shared that the model does not share");
        vm.assertEq(log.topics[1], bytes32(uint256(e.shipmentId)), "BreachRunShared.shipmentId");
        vm.assertEq(log.topics[2], bytes32(uint256(uint160(e.custodian))), "BreachRunShared.custodian");
        (uint8 reason, uint32 period, uint64 deviceId, uint32 runSeconds) = abi.decode(
            log.data,
            (uint8, uint32, uint64, uint32)
        );
        vm.assertEq(reason, e.reason, "BreachRunShared.reason");
        vm.assertEq(period, e.period, "BreachRunShared.periodIndex");
        vm.assertEq(deviceId, e.deviceId, "BreachRunShared.deviceId");
        vm.assertEq(runSeconds, e.at, "BreachRunShared.runSeconds");
        ++runShares;
    }

    /// @dev A reading seen recorded: a device's readings in a shipment are recorded once each, in the order the
    /// device took them.
    function _countRecorded(uint64 shipmentId, uint64 deviceId, uint256 at) private {
        if (at <= lastRecordedAt[shipmentId][deviceId]) ++outOfOrderRecordings;
        lastRecordedAt[shipmentId][deviceId] = at;
        ++recordedFromEvents;
    }

    function _slice(bytes memory data, uint256 from, uint256 to) private pure returns (bytes memory out) {
        out = new bytes(to - from);
        for (uint256 i = from; i < to; ++i) out[i - from] = data[i];
    }

    // ================================================================ random choices

    /// @dev A device's next temperature. It follows the device's mood, which mostly persists from one reading to
    /// the next (in range; warm: out of range, now and then above the absolute maximum; freezing: at or below the
    /// freeze threshold, now and then below the absolute minimum), so runs long enough for every duration limit
    /// happen; the range's edges now and then.
    function _pickTemperature(Prng.Rng memory rng, uint64 deviceId) private returns (int16) {
        uint256 m = mood[deviceId];
        if (rng.chance(15)) {
            m = rng.chance(55) ? 0 : (rng.chance(65) ? 1 : 2);
            mood[deviceId] = m;
        }
        if (rng.chance(10)) return [int16(199), 200, 800, 801][rng.next() % 4];
        if (m == 0) return int16(rng.betweenInt(MIN_CENTI_C, MAX_CENTI_C));
        if (m == 1) return int16(rng.betweenInt(MAX_CENTI_C + 1, 2600));
        return int16(rng.betweenInt(-600, FREEZE_CENTI_C));
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
        g.breachFlags.push(0);
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
        g.breachFlags.push(0);
        ++handovers;
        if (to == receiver) {
            g.status = IShipments.ShipmentStatus.Delivered;
            g.deliveredAt = since;
            ++deliveries;
        }
    }

    /// @dev An expired offer: its acceptance is refused, the custodian withdraws it.
    function _refuseExpired(uint64 id, address from, address to) private {
        vm.prank(to);
        try coldChain.acceptCustody(id) {
            vm.assertTrue(false, "expired offer accepted");
        } catch (bytes memory reason) {
            vm.assertEq(reason, abi.encodeWithSelector(IShipments.CustodyOfferInvalid.selector, id, to), "why");
        }
        vm.prank(from);
        coldChain.cancelCustodyOffer(id);
        ++expiredOffers;
    }

    function _clearOffer(GhostShipment storage g) private {
        (g.offerTo, g.offerDeadline, g.offerHandoverAt) = (address(0), 0, 0);
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
        s.profileId = coldChain.createProfile(invariantProfile());
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
    /// ghost's (same parties, same times, never the same party twice in a row); a pending offer is the ghost's.
    function invariant_exactlyOneCustodianAtATime() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) _checkCustody(ids[i]);
    }

    /// @notice A device's readings are recorded once each, in the order the device took them: in the events, the
    /// observation times of each (shipment, device) strictly increase; the events add up to the accepted readings,
    /// and the shipments' reading counts add up to them too.
    function invariant_readingsRecordedOnceInTheirDevicesOrder() public view {
        vm.assertEq(handler.outOfOrderRecordings(), 0, "a reading recorded twice or out of its device's order");
        vm.assertEq(handler.recordedFromEvents(), handler.ghostAccepted(), "recorded events vs accepted");
        uint64[] memory ids = handler.allShipments();
        uint256 total;
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 count = coldChain.condition(ids[i]).readingCount;
            vm.assertEq(count, handler.ghost(ids[i]).readings, "readingCount");
            total += count;
        }
        vm.assertEq(total, handler.ghostAccepted(), "sum of readingCount");
    }

    /// @notice isRecorded(device, t): true for every reading the model recorded in the device's current shipment,
    /// false for every reading the relayer still holds, for the second after the device's latest reading and for
    /// the second before the start; true at the start once the device has a reading there.
    function invariant_isRecordedMatchesTheChain() public view {
        ColdChainHandler.Device[] memory devices = handler.allDevices();
        for (uint256 d = 0; d < devices.length; ++d) {
            uint64 deviceId = devices[d].id;
            uint64 id = handler.shipmentOf(deviceId);
            ColdChainHandler.GhostDevice memory gd = handler.ghostDevice(id, deviceId);
            uint256[] memory times = gd.recordedTimes;
            uint256 from = times.length > 32 ? times.length - 32 : 0;
            for (uint256 k = from; k < times.length; ++k) {
                vm.assertTrue(coldChain.isRecorded(deviceId, uint40(times[k])), "recorded reading not isRecorded");
            }
            uint256[] memory held = handler.pendingTimes(deviceId);
            for (uint256 k = 0; k < held.length; ++k) {
                vm.assertFalse(coldChain.isRecorded(deviceId, uint40(held[k])), "held reading isRecorded");
            }
            vm.assertFalse(coldChain.isRecorded(deviceId, uint40(gd.lastAt + 1)), "after the latest");
            uint256 startedAt = handler.ghost(id).startedAt;
            if (startedAt != 0) {
                vm.assertEq(coldChain.isRecorded(deviceId, uint40(startedAt)), gd.lastAt != 0, "at the start");
                vm.assertFalse(coldChain.isRecorded(deviceId, uint40(startedAt - 1)), "before the start");
            }
        }
    }

    /// @notice The devices of a shipment cancelled after its start stay bound to it for the hold.
    function invariant_cancelledShipmentsKeepTheirDevices() public view {
        vm.assertEq(handler.holdViolations(), 0, "device re-bound during the hold");
    }

    /// @notice Cumulative excursion never decreases: it equals the ghost sum (which only grows) and is at least
    /// what the handler saw after its last action.
    function invariant_excursionNeverDecreases() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) {
            uint256 cumulative = coldChain.condition(ids[i]).cumulativeExcursionSeconds;
            vm.assertEq(cumulative, handler.ghost(ids[i]).cumulativeSeconds, "cumulative vs ghost");
            vm.assertGe(cumulative, handler.cumulativeSeen(ids[i]), "cumulative decreased");
        }
    }

    /// @notice The excursion seconds charged to the custody periods add up to the shipment's, each period's
    /// equals the ghost's (readings charged by observation time), and excursionSecondsOf agrees per party; each
    /// period's breach flags are the ghost's, and together the shipment's.
    function invariant_custodyExcursionSumsToShipment() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) {
            IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(ids[i]);
            ColdChainHandler.GhostShipment memory g = handler.ghost(ids[i]);
            uint256 sum;
            uint256 flags;
            for (uint256 p = 0; p < periods.length; ++p) {
                vm.assertEq(periods[p].excursionSeconds, g.excursionSeconds[p], "period excursion vs ghost");
                vm.assertEq(periods[p].breachFlags, g.breachFlags[p], "period breach flags vs ghost");
                sum += periods[p].excursionSeconds;
                flags |= periods[p].breachFlags;
            }
            IReadingsInbox.Condition memory c = coldChain.condition(ids[i]);
            vm.assertEq(sum, c.cumulativeExcursionSeconds, "sum of periods");
            vm.assertEq(flags, c.breachFlags, "union of the periods' breach flags");
            address last = periods[periods.length - 1].custodian;
            uint256 ofLast;
            for (uint256 p = 0; p < periods.length; ++p) {
                if (periods[p].custodian == last) ofLast += periods[p].excursionSeconds;
            }
            vm.assertEq(lens.excursionSecondsOf(ids[i], last), ofLast, "excursionSecondsOf");
        }
    }

    /// @notice Every field of every shipment's condition is the model's: counts, extremes, times, the sums over
    /// devices, the longest run, the device counts, the status flags (some device out of range / freezing, the
    /// pooled MKT), the breaches and the earliest one.
    function invariant_conditionMatchesModel() public view {
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) _checkCondition(ids[i]);
    }

    /// @notice Every device's track and, in every shipment it travelled with, its evidence are the model's: the
    /// head of its chain, its runs, its own cumulative time and MKT sums, and the breach kinds announced for it in
    /// the custody period the evidence names.
    function invariant_devicesMatchModel() public view {
        ColdChainHandler.Device[] memory devices = handler.allDevices();
        uint64[] memory ids = handler.allShipments();
        for (uint256 d = 0; d < devices.length; ++d) {
            uint64 deviceId = devices[d].id;
            uint64 current = handler.shipmentOf(deviceId);
            ColdChainHandler.GhostDevice memory gd = handler.ghostDevice(current, deviceId);
            IReadingsInbox.DeviceTrack memory t = coldChain.deviceTrack(deviceId);
            vm.assertEq(t.shipmentId, current, "track.shipmentId");
            vm.assertEq(t.lastObservedAt, gd.lastAt, "track.lastObservedAt");
            vm.assertEq(t.excursionStartedAt, gd.runStart, "track.excursionStartedAt");
            vm.assertEq(t.freezeStartedAt, gd.freezeStart, "track.freezeStartedAt");
            vm.assertEq(t.lastSequence, handler.lastSequenceOf(deviceId), "track.lastSequence");
            for (uint256 i = 0; i < ids.length; ++i) _checkEvidence(ids[i], deviceId);
        }
    }

    /// @notice BreachRecorded comes once per (device, custody period, kind), and the kinds announced in a period
    /// (by any device) are exactly that period's breach flags.
    function invariant_breachRecordedOncePerDevicePeriodAndKind() public view {
        vm.assertEq(handler.repeatedBreachEvents(), 0, "a breach announced twice for a device, period and kind");
        uint64[] memory ids = handler.allShipments();
        for (uint256 i = 0; i < ids.length; ++i) {
            IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(ids[i]);
            for (uint256 p = 0; p < periods.length; ++p) {
                vm.assertEq(handler.announcedInPeriod(ids[i], p), periods[p].breachFlags, "announced vs flags");
            }
        }
    }

    /// @notice Every batch skipped exactly its invalid items (checked per batch by the handler), so the totals
    /// agree too: one ReadingSkipped per skipped item, every corrupted item among them.
    function invariant_batchesSkipExactlyTheInvalidItems() public view {
        vm.assertLe(handler.corruptedItems(), handler.skippedEvents(), "corrupted items all skipped");
        uint256 byReason;
        for (uint256 r = 0; r <= uint256(IReadingsInbox.SkipReason.SequenceGap); ++r) {
            byReason += handler.skipsByReason(r);
        }
        vm.assertEq(byReason, handler.skippedEvents(), "one ReadingSkipped per skipped item");
    }

    function _checkCondition(uint64 id) private view {
        IReadingsInbox.Condition memory c = coldChain.condition(id);
        ColdChainHandler.GhostShipment memory g = handler.ghost(id);
        vm.assertEq(c.readingCount, g.readings, "readingCount");
        if (g.hasTemperature) {
            vm.assertEq(c.minCentiC, g.minCentiC, "minCentiC");
            vm.assertEq(c.maxCentiC, g.maxCentiC, "maxCentiC");
        }
        vm.assertEq(c.lastObservedAt, g.lastObservedAt, "lastObservedAt");
        vm.assertEq(c.cumulativeExcursionSeconds, g.cumulativeSeconds, "cumulativeExcursionSeconds");
        vm.assertEq(c.longestExcursionSeconds, g.longestRunSeconds, "longestExcursionSeconds");
        vm.assertEq(c.breachFlags, g.breaches, "breachFlags");
        vm.assertEq(uint256(c.firstBreach), g.firstBreach, "firstBreach");
        vm.assertEq(c.firstBreachAt, g.firstBreachAt, "firstBreachAt");
        vm.assertEq(c.mktWeightedSum, g.mktSum, "mktWeightedSum");
        vm.assertEq(c.mktSeconds, g.mktSeconds, "mktSeconds");
        uint256 excursionDevices;
        uint256 freezeDevices;
        for (uint256 d = 0; d < g.deviceIds.length; ++d) {
            ColdChainHandler.GhostDevice memory gd = handler.ghostDevice(id, g.deviceIds[d]);
            if (gd.runStart != 0) ++excursionDevices;
            if (gd.freezeStart != 0) ++freezeDevices;
        }
        vm.assertEq(c.excursionDevices, excursionDevices, "excursionDevices");
        vm.assertEq(c.freezeDevices, freezeDevices, "freezeDevices");
        uint256 status =
            (g.hasTemperature ? 1 : 0) |
                (excursionDevices != 0 ? 2 : 0) |
                (freezeDevices != 0 ? 4 : 0) |
                (handler.modelMktAbove(id) ? 8 : 0);
        vm.assertEq(c.statusFlags, status, "statusFlags");
    }

    function _checkEvidence(uint64 id, uint64 deviceId) private view {
        ColdChainHandler.GhostDevice memory gd = handler.ghostDevice(id, deviceId);
        IReadingsInbox.DeviceEvidence memory e = coldChain.deviceEvidence(id, deviceId);
        vm.assertEq(e.mktWeightedSum, gd.mktSum, "evidence.mktWeightedSum");
        vm.assertEq(e.mktSeconds, gd.mktSeconds, "evidence.mktSeconds");
        vm.assertEq(e.cumulativeExcursionSeconds, gd.cumulativeSeconds, "evidence.cumulativeExcursionSeconds");
        vm.assertEq(e.breachFlags, handler.announcedFor(id, deviceId, e.breachPeriod), "evidence.breachFlags");
        if (gd.announcedAny) vm.assertGe(e.breachPeriod, gd.lastAnnouncedPeriod, "evidence.breachPeriod");
        vm.assertLt(e.breachPeriod, coldChain.custodyHistory(id).length, "evidence.breachPeriod in the history");
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
        vm.assertEq(info.startedAt, g.startedAt, "startedAt vs ghost");
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
        vm.assertEq(offer.to, g.offerTo, "pending offer vs ghost");
        vm.assertEq(offer.handoverAt, g.offerHandoverAt, "pending offer's boundary vs ghost");
    }

    /// @dev Reference for custodianAt: the custodian of the last period that began at or before `t` (the first
    /// custodian before any).
    function _holderAt(IShipments.CustodyPeriod[] memory periods, uint256 t) private pure returns (address holder) {
        holder = periods[0].custodian;
        for (uint256 p = 0; p < periods.length; ++p) if (periods[p].since <= t) holder = periods[p].custodian;
    }

    // ================================================================ concrete replay of a handler run

    /// @notice A fixed sequence of 150 handler actions with every invariant checked after each 5th; also pins
    /// that the run reaches the interesting cases (late charges, deliveries, expired and pending offers, retried
    /// readings recorded, every skip reason the handler can cause, every kind of breach, shared runs).
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
        vm.assertGt(handler.pendingOffers(), 0, "offers left pending");
        vm.assertGt(handler.lateCharges(), 0, "late readings charged to an earlier custodian");
        vm.assertGt(handler.retriesRecorded(), 0, "readings recorded once their predecessor was");
        for (uint256 r = 0; r <= uint256(IReadingsInbox.SkipReason.SequenceGap); ++r) {
            if (r == uint256(IReadingsInbox.SkipReason.RevokedDevice)) continue;
            vm.assertGt(handler.skipsByReason(r), 0, string.concat("skip reason ", vm.toString(r)));
        }
        for (uint256 r = 1; r <= uint256(IReadingsInbox.BreachReason.MktExceeded); ++r) {
            vm.assertGt(handler.breachesByReason(r), 0, string.concat("breach reason ", vm.toString(r)));
        }
        vm.assertGt(handler.runShares(), 0, "runs shared between custodians");
    }

    /// @notice Every invariant of this suite (for {test_invariants_replay}).
    function checkAllInvariants() external view {
        invariant_exactlyOneCustodianAtATime();
        invariant_readingsRecordedOnceInTheirDevicesOrder();
        invariant_isRecordedMatchesTheChain();
        invariant_cancelledShipmentsKeepTheirDevices();
        invariant_excursionNeverDecreases();
        invariant_custodyExcursionSumsToShipment();
        invariant_conditionMatchesModel();
        invariant_devicesMatchModel();
        invariant_breachRecordedOncePerDevicePeriodAndKind();
        invariant_batchesSkipExactlyTheInvalidItems();
    }
}

/// @title ColdChainBatchTest
/// @notice Concrete batches against a fresh deployment: the k-corrupted-items property outside the invariant
/// run, the EIP-712 domain, the chain rule of protocol v2 case by case, and regressions of the contract bugs this
/// suite found.
contract ColdChainBatchTest is ColdChainFixture {
    uint64 internal constant DEVICE_A = 101;
    uint64 internal constant DEVICE_B = 102;
    uint64 internal constant DEVICE_UNBOUND = 104;

    function setUp() public {
        deploySuite();
    }

    // ================================================================ concrete batches

    function test_domainSeparator_matchesEip712Domain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract, , ) = coldChain
            .eip712Domain();
        vm.assertEq(keccak256(bytes(name)), keccak256("ColdChain"), "name");
        vm.assertEq(keccak256(bytes(version)), keccak256("2"), "version");
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

    /// @notice A batch with k = 10 invalid items records every valid reading and emits exactly 10
    /// ReadingSkipped events, one per invalid item, with the right reason, in batch order. Among the valid ones, a
    /// reading relayed before its predecessor is skipped (SequenceGap) and recorded when relayed again after it,
    /// in the same item.
    function test_submitReadings_batchWithKCorruptedItemsRecordsEveryValidOne() public {
        uint256 keyA = keyOf("device A");
        registerDevice(DEVICE_A, 300, keyA);
        registerDevice(DEVICE_UNBOUND, 300, keyOf("device unbound"));
        uint64 shipmentId = startedShipment(DEVICE_A);
        vm.warp(T0 + 1 days);
        uint40 at = uint40(T0 + 600);

        (bytes memory items, bytes memory order) = _readingsOfA(keyA, at);
        items = bytes.concat(items, _otherItems(keyA, at));

        vm.recordLogs();
        vm.prank(relayer);
        (uint256 accepted, uint256 skipped) = coldChain.submitReadings(BatchEncoder.batch(items));
        Vm.Log[] memory logs = vm.getRecordedLogs();

        vm.assertEq(accepted, 4 + 4, "4 valid readings + a window of 4");
        vm.assertEq(skipped, 4 + 2 + 1 + 4 + 1 + 1, "readings skipped (the malformed window counts 4)");
        uint8[10] memory reasons = [
            uint8(IReadingsInbox.SkipReason.BadSignature),
            uint8(IReadingsInbox.SkipReason.DuplicateSequence),
            uint8(IReadingsInbox.SkipReason.SequenceGap),
            uint8(IReadingsInbox.SkipReason.FutureTimestamp),
            uint8(IReadingsInbox.SkipReason.UnknownDevice),
            uint8(IReadingsInbox.SkipReason.UnknownDevice),
            uint8(IReadingsInbox.SkipReason.UnboundDevice),
            uint8(IReadingsInbox.SkipReason.MalformedItem),
            uint8(IReadingsInbox.SkipReason.OutsideShipmentWindow),
            uint8(IReadingsInbox.SkipReason.StaleSequence)
        ];
        uint256 k;
        bytes memory recorded;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IReadingsInbox.ReadingSkipped.selector) {
                (, , uint8 reason) = abi.decode(logs[i].data, (uint32, uint16, uint8));
                vm.assertEq(reason, reasons[k++], "skip reason, in batch order");
            } else if (logs[i].topics[0] == IReadingsInbox.ReadingsRecorded.selector) {
                (, bytes memory records) = abi.decode(logs[i].data, (uint64, bytes));
                recorded = bytes.concat(recorded, records);
            }
        }
        vm.assertEq(k, 10, "exactly k ReadingSkipped events");
        vm.assertEq(recorded, order, "every valid single reading recorded, in the device's order");
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 8, "readingCount");
        IReadingsInbox.DeviceTrack memory t = coldChain.deviceTrack(DEVICE_A);
        vm.assertEq(t.lastObservedAt, at + 2100, "the window's last sample is the head of the chain");
        vm.assertEq(t.lastSequence, 13, "its sequence");
        vm.assertTrue(coldChain.isRecorded(DEVICE_A, at + 2100), "window recorded");
        vm.assertTrue(coldChain.isRecorded(DEVICE_A, at), "first reading recorded");
        vm.assertFalse(coldChain.isRecorded(DEVICE_A, at + 2101), "nothing after the head");
        vm.assertFalse(coldChain.isRecorded(DEVICE_A, uint40(T0 - 1)), "nothing before the start");
    }

    /// @dev Item 1 of {test_submitReadings_batchWithKCorruptedItemsRecordsEveryValidOne} and the records of its
    /// accepted readings, in the device's order.
    function _readingsOfA(uint256 keyA, uint40 at) private view returns (bytes memory item, bytes memory records) {
        // Item 1: READINGS of A, 8 readings: valid, forged (another key), valid, the first again, one whose
        // predecessor is not recorded yet, that predecessor, the one before again (now recorded), a future one.
        BatchEncoder.Reading memory r0 = BatchEncoder.Reading(DEVICE_A, 1, at, 500, 0, uint40(T0 - 300));
        BatchEncoder.Reading memory r1 = BatchEncoder.Reading(DEVICE_A, 2, at + 300, 510, 0, at);
        BatchEncoder.Reading memory r2 = BatchEncoder.Reading(DEVICE_A, 3, at + 600, 520, 0, at + 300);
        BatchEncoder.Reading memory r3 = BatchEncoder.Reading(DEVICE_A, 4, at + 900, 530, 0, at + 600);
        BatchEncoder.Reading memory future = BatchEncoder.Reading(
            DEVICE_A,
            9,
            uint40(vm.getBlockTimestamp() + 301),
            550,
            0,
            at + 900
        );
        bytes memory body = bytes.concat(
            BatchEncoder.signReading(domain, keyA, r0),
            BatchEncoder.signReading(domain, keyA ^ 1, r1),
            BatchEncoder.signReading(domain, keyA, r1),
            BatchEncoder.signReading(domain, keyA, r0),
            BatchEncoder.signReading(domain, keyA, r3)
        );
        body = bytes.concat(
            body,
            BatchEncoder.signReading(domain, keyA, r2),
            BatchEncoder.signReading(domain, keyA, r3),
            BatchEncoder.signReading(domain, keyA, future)
        );
        item = BatchEncoder.readingsItem(DEVICE_A, 8, body);
        records = bytes.concat(
            BatchEncoder.readingRecord(r0),
            BatchEncoder.readingRecord(r1),
            BatchEncoder.readingRecord(r2),
            BatchEncoder.readingRecord(r3)
        );
    }

    /// @dev Items 2 to 7 of {test_submitReadings_batchWithKCorruptedItemsRecordsEveryValidOne}.
    function _otherItems(uint256 keyA, uint40 at) private view returns (bytes memory items) {
        // Item 2: READINGS of an unknown device, 2 readings (2 skipped items).
        BatchEncoder.Reading[] memory unknown = new BatchEncoder.Reading[](2);
        unknown[0] = BatchEncoder.Reading(999, 1, at, 500, 0, 0);
        unknown[1] = BatchEncoder.Reading(999, 2, at + 300, 500, 0, at);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyA, unknown));
        // Item 3: READINGS of a registered device on no shipment.
        BatchEncoder.Reading[] memory unbound = new BatchEncoder.Reading[](1);
        unbound[0] = BatchEncoder.Reading(DEVICE_UNBOUND, 1, at, 500, 0, 0);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyOf("device unbound"), unbound));
        // Item 4: a valid WINDOW of A, 4 readings (sequences 10..13) after r3.
        bytes memory samples = hex"01f40001f900032c00ffe200"; // 5.00, 5.05, 8.12, -0.30 C
        items = bytes.concat(
            items,
            BatchEncoder.signedWindowItem(domain, keyA, DEVICE_A, 10, at + 1200, 300, samples, at + 900)
        );
        // Item 5: a WINDOW of A with the wrong interval (malformed), 4 readings in one skipped item.
        items = bytes.concat(
            items,
            BatchEncoder.signedWindowItem(domain, keyA, DEVICE_A, 20, at + 3000, 600, samples, at + 2100)
        );
        // Item 6: READINGS of A: one observed before the shipment started.
        BatchEncoder.Reading[] memory early = new BatchEncoder.Reading[](1);
        early[0] = BatchEncoder.Reading(DEVICE_A, 30, uint40(T0 - 1), 500, 0, 0);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyA, early));
        // Item 7: READINGS of A: a second history (after the latest reading, naming an older predecessor).
        BatchEncoder.Reading[] memory forked = new BatchEncoder.Reading[](1);
        forked[0] = BatchEncoder.Reading(DEVICE_A, 31, at + 2400, 500, 0, at + 1800);
        items = bytes.concat(items, BatchEncoder.signedReadingsItem(domain, keyA, forked));
    }

    // ================================================================ the chain rule, case by case

    /// @notice The first reading of a device in a shipment is the one whose predecessor lies before the start (or
    /// is none, 0); one naming a predecessor at or after the start waits for it (SequenceGap).
    function test_chain_firstReadingNamesAPredecessorBeforeTheStart() public {
        (uint256 keyA, uint256 keyB) = _twoDevicesOnAShipment();
        uint40 at = uint40(T0 + 600);
        _expectSkip(DEVICE_A, 1, IReadingsInbox.SkipReason.SequenceGap);
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 1, at, 500, 0, uint40(T0)));
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 2, at, 500, 0, uint40(T0 - 1)));
        _submit(keyB, BatchEncoder.Reading(DEVICE_B, 1, at, 500, 0, 0));
        vm.assertEq(coldChain.deviceTrack(DEVICE_A).lastObservedAt, at, "A: predecessor just before the start");
        vm.assertEq(coldChain.deviceTrack(DEVICE_B).lastObservedAt, at, "B: no predecessor");
    }

    /// @notice A reading relayed before its predecessor waits (SequenceGap, nothing recorded) and is recorded when
    /// relayed again once its predecessor is; relayed a third time it is a duplicate.
    function test_chain_readingRelayedBeforeItsPredecessorIsRecordedAfterIt() public {
        (uint256 keyA, ) = _twoDevicesOnAShipment();
        uint40 at = uint40(T0 + 600);
        BatchEncoder.Reading memory first = BatchEncoder.Reading(DEVICE_A, 1, at, 500, 0, 0);
        BatchEncoder.Reading memory second = BatchEncoder.Reading(DEVICE_A, 2, at + 300, 900, 0, at);
        _expectSkip(DEVICE_A, 2, IReadingsInbox.SkipReason.SequenceGap);
        _submit(keyA, second);
        uint64 shipmentId = coldChain.deviceTrack(DEVICE_A).shipmentId;
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 0, "nothing recorded");
        vm.assertFalse(coldChain.isRecorded(DEVICE_A, at + 300), "not recorded");
        _submit(keyA, first);
        _submit(keyA, second);
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 2, "both recorded");
        vm.assertEq(coldChain.condition(shipmentId).cumulativeExcursionSeconds, 300, "the second one counted");
        vm.assertTrue(coldChain.isRecorded(DEVICE_A, at + 300), "recorded");
        _expectSkip(DEVICE_A, 2, IReadingsInbox.SkipReason.DuplicateSequence);
        _submit(keyA, second);
        vm.assertEq(coldChain.condition(shipmentId).readingCount, 2, "once");
    }

    /// @notice A reading observed after the device's latest one but naming an older predecessor (a second
    /// history, or a device that lost its state: 0) is stale; the device's own chain goes on after it.
    function test_chain_secondHistoryIsStaleAndTheChainGoesOn() public {
        (uint256 keyA, ) = _twoDevicesOnAShipment();
        uint40 at = uint40(T0 + 600);
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 1, at, 500, 0, 0));
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 2, at + 300, 500, 0, at));
        _expectSkip(DEVICE_A, 7, IReadingsInbox.SkipReason.StaleSequence);
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 7, at + 600, 500, 0, at));
        _expectSkip(DEVICE_A, 8, IReadingsInbox.SkipReason.StaleSequence);
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 8, at + 600, 500, 0, 0));
        _expectSkip(DEVICE_A, 9, IReadingsInbox.SkipReason.DuplicateSequence);
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 9, at + 300, 600, 0, at));
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 3, at + 600, 500, 0, at + 300));
        vm.assertEq(coldChain.deviceTrack(DEVICE_A).lastObservedAt, at + 600, "the chain went on");
    }

    /// @notice BreachRecorded comes once per device, custody period and kind: two devices raising the same kind
    /// in one period announce it once each; again in the same period, not at all; after a handover, again once.
    function test_breachRecorded_oncePerDevicePeriodAndKind() public {
        (uint256 keyA, uint256 keyB) = _twoDevicesOnAShipment();
        uint40 at = uint40(T0 + 600);
        // Above the absolute maximum (25.00 C): AbsoluteLimit (and an excursion).
        vm.recordLogs();
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 1, at, 3000, 0, 0));
        _submit(keyB, BatchEncoder.Reading(DEVICE_B, 1, at, 3000, 0, 0));
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 2, at + 300, 3000, 0, at));
        _submit(keyB, BatchEncoder.Reading(DEVICE_B, 2, at + 300, 3000, 0, at));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(_absoluteLimitEvents(logs, DEVICE_A), 1, "A: once in period 0");
        vm.assertEq(_absoluteLimitEvents(logs, DEVICE_B), 1, "B: once in period 0");
        uint64 shipmentId = coldChain.deviceTrack(DEVICE_A).shipmentId;
        vm.warp(T0 + 2 days);
        vm.prank(shipper);
        coldChain.offerCustody(shipmentId, carrier, uint40(vm.getBlockTimestamp() + 1 hours));
        vm.prank(carrier);
        coldChain.acceptCustody(shipmentId);
        uint40 later = uint40(vm.getBlockTimestamp() + 60);
        vm.recordLogs();
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 3, later, 3000, 0, at + 300));
        _submit(keyA, BatchEncoder.Reading(DEVICE_A, 4, later + 300, 3000, 0, later));
        logs = vm.getRecordedLogs();
        vm.assertEq(_absoluteLimitEvents(logs, DEVICE_A), 1, "A: once in period 1");
        IReadingsInbox.DeviceEvidence memory e = coldChain.deviceEvidence(shipmentId, DEVICE_A);
        vm.assertEq(e.breachPeriod, 1, "evidence: period 1");
        vm.assertTrue(e.breachFlags & (1 << uint256(IReadingsInbox.BreachReason.AbsoluteLimit)) != 0, "announced");
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
        r[0] = BatchEncoder.Reading(0, 1, uint40(T0), 500, 0, 0);
        bytes memory batch = BatchEncoder.batch(BatchEncoder.signedReadingsItem(domain, keyOf("device 0"), r));
        vm.expectEmit(true, false, false, true, address(coldChain));
        emit IReadingsInbox.ReadingSkipped(0, 1, 1, IReadingsInbox.SkipReason.UnknownDevice);
        coldChain.submitReadings(batch);
    }

    // ================================================================ helpers

    /// @dev Devices A and B (300 s) on one vaccine shipment started at T0; the clock at T0 + 1 day.
    function _twoDevicesOnAShipment() private returns (uint256 keyA, uint256 keyB) {
        (keyA, keyB) = (keyOf("device A"), keyOf("device B"));
        registerDevice(DEVICE_A, 300, keyA);
        registerDevice(DEVICE_B, 300, keyB);
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (DEVICE_A, DEVICE_B);
        uint64 shipmentId = createShipment(ids);
        vm.prank(shipper);
        coldChain.startShipment(shipmentId);
        vm.warp(T0 + 1 days);
    }

    /// @dev Submits one reading signed with `key`.
    function _submit(uint256 key, BatchEncoder.Reading memory r) private {
        BatchEncoder.Reading[] memory one = new BatchEncoder.Reading[](1);
        one[0] = r;
        vm.prank(relayer);
        coldChain.submitReadings(BatchEncoder.batch(BatchEncoder.signedReadingsItem(domain, key, one)));
    }

    function _expectSkip(uint64 deviceId, uint32 sequence, IReadingsInbox.SkipReason reason) private {
        vm.expectEmit(true, false, false, true, address(coldChain));
        emit IReadingsInbox.ReadingSkipped(deviceId, sequence, 1, reason);
    }

    /// @dev BreachRecorded(AbsoluteLimit) events of `deviceId` among `logs`.
    function _absoluteLimitEvents(Vm.Log[] memory logs, uint64 deviceId) private pure returns (uint256 n) {
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != IReadingsInbox.BreachRecorded.selector) continue;
            (IReadingsInbox.BreachReason reason, , uint64 id, , ) = abi.decode(
                logs[i].data,
                (IReadingsInbox.BreachReason, uint32, uint64, uint32, uint40)
            );
            if (id == deviceId && reason == IReadingsInbox.BreachReason.AbsoluteLimit) ++n;
        }
    }
}
