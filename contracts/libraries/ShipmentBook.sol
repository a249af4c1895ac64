// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IReadingsInbox} from "../interfaces/IReadingsInbox.sol";
import {IShipments} from "../interfaces/IShipments.sol";
import {MktLib} from "./MktLib.sol";

/// @title ShipmentBook
/// @notice The stored form of a shipment, the checks a rule profile must pass, the creation of a shipment with
/// its device bindings, its custody transfers, cancellation and decision, and the sharing of a breach run between
/// custodians.
/// @dev A linked library (external functions, called with DELEGATECALL): its code lives outside `ColdChain`,
/// which stays under EIP-170's 24,576 bytes. Only paths that run once per shipment, profile, handover or breach
/// are here; the ingestion path stays in `ReadingsInbox`.
library ShipmentBook {
    /// @notice Most devices one shipment carries.
    uint256 internal constant MAX_DEVICES_PER_SHIPMENT = 8;
    /// @notice Most custody periods one shipment records (bounds every loop over the history).
    uint256 internal constant MAX_CUSTODY_PERIODS = 64;
    /// @notice Lowest temperature a profile's range, freeze threshold or MKT limit may name: -200.00 degrees C
    /// (cell and gene therapies ship in liquid-nitrogen vapour, about -150 degrees C and below).
    int256 internal constant LOWEST_CENTI_C = -20_000;
    /// @notice Highest temperature a profile's range may name: +80.00 degrees C.
    int256 internal constant HIGHEST_CENTI_C = 8_000;
    /// @notice How long the devices of a cancelled shipment that had started stay bound to it, so that readings
    /// observed before the cancellation can still be recorded (a logger's offline backlog) and no new shipment
    /// can take them in the meantime.
    uint256 internal constant CANCELLED_DEVICE_HOLD_SECONDS = 7 days;
    /// @notice Longest free-text note a decision carries, in bytes of UTF-8 (a few sentences; bounds the event's
    /// gas to about 2,300 for the data).
    uint256 internal constant MAX_DECISION_NOTE_BYTES = 280;

    /// @dev slot 0: shipper (160) | status (8) | profileId (32) | startedAt (40)      = 240 bits
    ///      slot 1: receiver (160) | deliveredAt (40) | decidedAt (40)               = 240 bits
    ///      slot 2: owner (160) | createdAt (40) | plannedStartAt (40)               = 240 bits
    /// The readings inbox reads slots 0 and 1 once per shipment and batch. `decidedAt` is also the time of a
    /// cancellation: readings observed after it are refused.
    struct Shipment {
        address shipper;
        IShipments.ShipmentStatus status;
        uint32 profileId;
        uint40 startedAt;
        address receiver;
        uint40 deliveredAt;
        uint40 decidedAt;
        address owner;
        uint40 createdAt;
        uint40 plannedStartAt;
        bytes32 externalRef;
        bytes32 rejectionCode;
        uint64[] deviceIds;
    }

    /// @notice Reverts with {IShipments.ProfileInvalid} naming the first incoherent rule of `p`.
    /// @dev Every valid profile is safe on every path: the range, the freeze threshold and the MKT limit lie in
    /// [-200.00, +80.00] degrees C, the freeze threshold (when its alarm is on) below the range's maximum, and
    /// the absolute limits outside the range. Temperatures beyond the MKT table (-80.0 .. +80.0 degrees C) are
    /// clamped to it, and such readings take the full path.
    function validateProfile(IShipments.TemperatureProfile calldata p) public pure {
        if (p.minCentiC < LOWEST_CENTI_C || p.maxCentiC > HIGHEST_CENTI_C || p.minCentiC >= p.maxCentiC) {
            revert IShipments.ProfileInvalid("range");
        }
        if (p.absoluteMinCentiC > p.minCentiC || p.absoluteMaxCentiC < p.maxCentiC) {
            revert IShipments.ProfileInvalid("absoluteLimits");
        }
        if (p.maxFreezeSeconds != 0 && (p.freezeCentiC < LOWEST_CENTI_C || p.freezeCentiC >= p.maxCentiC)) {
            revert IShipments.ProfileInvalid("freezeCentiC");
        }
        if (
            p.mktEnabled &&
            (p.mktLimitCentiC % 10 != 0 ||
                p.mktLimitCentiC < MktLib.TABLE_MIN_CENTI_C ||
                p.mktLimitCentiC > MktLib.TABLE_MAX_CENTI_C)
        ) revert IShipments.ProfileInvalid("mktLimitCentiC");
    }

    /// @notice Checks `p` ({validateProfile}) and stores it as profile `profileId`, with the MKT table factor of
    /// its limit.
    function storeProfile(
        mapping(uint32 => IShipments.TemperatureProfile) storage profiles,
        mapping(uint32 => uint256) storage mktLimitFactors,
        address mktTable,
        uint32 profileId,
        IShipments.TemperatureProfile calldata p
    ) external {
        validateProfile(p);
        profiles[profileId] = p;
        if (p.mktEnabled) mktLimitFactors[profileId] = MktLib.factorOf(mktTable, p.mktLimitCentiC);
        emit IShipments.ProfileCreated(profileId, msg.sender, p);
    }

    /// @notice Starts shipment `s` at `startedAt` (status InTransit): now, or the boundary of its first handover.
    function start(Shipment storage s, uint64 shipmentId, uint40 startedAt) public {
        s.status = IShipments.ShipmentStatus.InTransit;
        s.startedAt = startedAt;
        emit IShipments.ShipmentStarted(shipmentId, startedAt);
    }

    /// @notice The current custodian starts a created shipment now.
    function startBy(Shipment storage s, IShipments.CustodyPeriod[] storage periods, uint64 shipmentId) external {
        if (periods[periods.length - 1].custodian != msg.sender) {
            revert IShipments.CustodyNotCustodian(shipmentId, msg.sender);
        }
        if (s.status != IShipments.ShipmentStatus.Created) revert IShipments.ShipmentWrongStatus(shipmentId, s.status);
        start(s, shipmentId, SafeCast.toUint40(block.timestamp));
    }

    /// @notice The public view of shipment `s` (see {IShipments.shipment}).
    function info(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods
    ) external view returns (IShipments.ShipmentInfo memory) {
        return
            IShipments.ShipmentInfo({
                status: s.status,
                shipper: s.shipper,
                receiver: s.receiver,
                owner: s.owner,
                custodian: periods[periods.length - 1].custodian,
                profileId: s.profileId,
                createdAt: s.createdAt,
                plannedStartAt: s.plannedStartAt,
                startedAt: s.startedAt,
                deliveredAt: s.deliveredAt,
                decidedAt: s.decidedAt,
                custodyPeriods: uint32(periods.length),
                externalRef: s.externalRef,
                rejectionCode: s.rejectionCode,
                deviceIds: s.deviceIds
            });
    }

    /// @notice Opens a custody period of `to` from `since` (starting the shipment if it was only created);
    /// delivers the shipment when `to` is its receiver. The caller checked who may hand over, and `since`.
    function transferCustody(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        address to,
        uint40 since
    ) public {
        uint256 index = periods.length;
        // The last period is kept for the receiver, so a shipment can always be delivered.
        if (index >= MAX_CUSTODY_PERIODS || (index == MAX_CUSTODY_PERIODS - 1 && to != s.receiver)) {
            revert IShipments.CustodyHistoryFull(shipmentId);
        }
        // The goods left when the first custodian handed them over: the shipment starts at that boundary.
        if (s.status == IShipments.ShipmentStatus.Created) start(s, shipmentId, since);
        address from = periods[index - 1].custodian;
        periods.push(IShipments.CustodyPeriod({custodian: to, since: since, excursionSeconds: 0, breachFlags: 0}));
        // index < MAX_CUSTODY_PERIODS: the cast is exact.
        emit IShipments.CustodyTransferred(shipmentId, from, to, uint32(index), since);
        if (to == s.receiver) {
            s.status = IShipments.ShipmentStatus.Delivered;
            s.deliveredAt = since;
            emit IShipments.ShipmentDelivered(shipmentId, to, since);
        }
    }

    /// @notice The current custodian offers custody of `s` to `to` until `deadline`, with the boundary
    /// `handoverAt` fixed now (see {IShipments.CustodyOffer}).
    function offer(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        mapping(uint64 => IShipments.CustodyOffer) storage offers,
        uint64 shipmentId,
        address to,
        uint40 deadline,
        uint40 handoverAt
    ) external {
        requireHandover(s, periods, shipmentId, to);
        if (deadline < block.timestamp) revert IShipments.CustodyDeadlinePassed(shipmentId, deadline);
        offers[shipmentId] = IShipments.CustodyOffer({to: to, deadline: deadline, handoverAt: handoverAt});
        emit IShipments.CustodyOffered(shipmentId, msg.sender, to, deadline);
    }

    /// @notice The current custodian withdraws its pending offer.
    function withdrawOffer(
        IShipments.CustodyPeriod[] storage periods,
        mapping(uint64 => IShipments.CustodyOffer) storage offers,
        uint64 shipmentId
    ) external {
        if (periods[periods.length - 1].custodian != msg.sender) {
            revert IShipments.CustodyNotCustodian(shipmentId, msg.sender);
        }
        address to = offers[shipmentId].to;
        if (to == address(0)) revert IShipments.CustodyOfferInvalid(shipmentId, msg.sender);
        delete offers[shipmentId];
        emit IShipments.CustodyOfferCancelled(shipmentId, msg.sender, to);
    }

    /// @notice The offered party accepts a pending, unexpired offer: its period opens at the offer's boundary.
    function acceptOffer(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        mapping(uint64 => IShipments.CustodyOffer) storage offers,
        uint64 shipmentId
    ) external {
        IShipments.CustodyOffer memory o = offers[shipmentId];
        if (o.to != msg.sender || o.to == address(0) || block.timestamp > o.deadline) {
            revert IShipments.CustodyOfferInvalid(shipmentId, msg.sender);
        }
        // No status check needed: every transfer and every cancellation deletes the pending offer, so an offer
        // exists only while the shipment is Created or InTransit and was made by the current custodian.
        delete offers[shipmentId];
        transferCustody(s, periods, shipmentId, msg.sender, o.handoverAt);
    }

    /// @notice Reverts unless the caller is the current custodian of `s`, `s` is Created or InTransit, and `to`
    /// is a new custodian.
    function requireHandover(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        address to
    ) public view {
        address custodian = periods[periods.length - 1].custodian;
        if (custodian != msg.sender) revert IShipments.CustodyNotCustodian(shipmentId, msg.sender);
        if (s.status != IShipments.ShipmentStatus.Created && s.status != IShipments.ShipmentStatus.InTransit) {
            revert IShipments.ShipmentWrongStatus(shipmentId, s.status);
        }
        if (to == address(0) || to == custodian) revert IShipments.CustodyRecipientInvalid(shipmentId, to);
    }

    /// @notice Opens `to`'s custody period from `since` after checking `signature`, `to`'s acceptance of `digest`
    /// (an EOA's ECDSA signature or an ERC-1271 contract's answer), if the caller may hand over to `to`.
    function transferCustodySigned(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        address to,
        uint40 since,
        bytes32 digest,
        bytes calldata signature
    ) external {
        requireHandover(s, periods, shipmentId, to);
        if (!SignatureChecker.isValidSignatureNow(to, digest, signature)) {
            revert IShipments.CustodySignatureInvalid(shipmentId, to);
        }
        transferCustody(s, periods, shipmentId, to, since);
    }

    /// @notice Cancels shipment `s` (Created or InTransit) for its current custodian, or an admin (`byAdmin`).
    /// @dev Readings observed up to now are still recorded (the inbox treats decidedAt as the end), and the devices
    /// stay bound for CANCELLED_DEVICE_HOLD_SECONDS if the shipment had started.
    function cancel(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        bool byAdmin
    ) external {
        IShipments.ShipmentStatus status = s.status;
        if (status != IShipments.ShipmentStatus.Created && status != IShipments.ShipmentStatus.InTransit) {
            revert IShipments.ShipmentWrongStatus(shipmentId, status);
        }
        // Only the party holding the goods (or an admin) cancels: nobody else can end the custody of another.
        // Created: the shipper is the custodian until the first handover.
        if (msg.sender != periods[periods.length - 1].custodian && !byAdmin) {
            revert IShipments.CustodyNotCustodian(shipmentId, msg.sender);
        }
        s.status = IShipments.ShipmentStatus.Cancelled;
        s.decidedAt = SafeCast.toUint40(block.timestamp);
        emit IShipments.ShipmentCancelled(shipmentId, msg.sender);
    }

    /// @notice Releases (`reasonCode` 0 and `release`) or rejects a delivered shipment, for its receiver or QA
    /// (`byQa`). With `noted`, the decider's `note` (1 to MAX_DECISION_NOTE_BYTES bytes) is emitted as
    /// {IShipments.DecisionNoted} right after the decision's event, and a rejection needs a reason code.
    function decideWithNote(
        Shipment storage s,
        uint64 shipmentId,
        bool release,
        bytes32 reasonCode,
        string calldata note,
        bool byQa
    ) external {
        _decide(s, shipmentId, release, reasonCode, note, true, byQa);
    }

    /// @notice {decideWithNote} without a note (`release` and `reject`).
    function decide(Shipment storage s, uint64 shipmentId, bool release, bytes32 reasonCode, bool byQa) external {
        _decide(s, shipmentId, release, reasonCode, "", false, byQa);
    }

    function _decide(
        Shipment storage s,
        uint64 shipmentId,
        bool release,
        bytes32 reasonCode,
        string memory note,
        bool noted,
        bool byQa
    ) private {
        if (msg.sender != s.receiver && !byQa) revert IShipments.ShipmentNotReceiverOrQa(shipmentId, msg.sender);
        if (s.status != IShipments.ShipmentStatus.Delivered)
            revert IShipments.ShipmentWrongStatus(shipmentId, s.status);
        if (noted) {
            uint256 length = bytes(note).length;
            if (length == 0 || length > MAX_DECISION_NOTE_BYTES) {
                revert IShipments.ShipmentNoteLengthInvalid(shipmentId, length, MAX_DECISION_NOTE_BYTES);
            }
            if (release != (reasonCode == 0)) revert IShipments.ShipmentReasonInvalid(shipmentId, reasonCode);
        }
        s.decidedAt = SafeCast.toUint40(block.timestamp);
        if (release) {
            s.status = IShipments.ShipmentStatus.Released;
            emit IShipments.ShipmentReleased(shipmentId, msg.sender);
        } else {
            s.status = IShipments.ShipmentStatus.Rejected;
            s.rejectionCode = reasonCode;
            emit IShipments.ShipmentRejected(shipmentId, msg.sender, reasonCode);
        }
        if (noted) emit IShipments.DecisionNoted(shipmentId, msg.sender, note);
    }

    /// @notice Emits {IReadingsInbox.BreachRunShared} for every custody period a run [runStart, runEnd) spans, when
    /// it began before the period of `observedAt` (the reading that crossed the limit). Bounded by
    /// MAX_CUSTODY_PERIODS.
    function shareRun(
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        uint64 deviceId,
        IReadingsInbox.BreachReason reason,
        uint256 runStart,
        uint256 runEnd,
        uint256 observedAt
    ) external {
        uint256 index = periodIndexAt(periods, observedAt);
        if (runStart >= periods[index].since) return;
        uint256 periodEnd = runEnd;
        for (uint256 p = index + 1; p > 0;) {
            --p;
            uint256 since = periods[p].since;
            uint256 from = since > runStart ? since : runStart;
            // p < MAX_CUSTODY_PERIODS; a run is shorter than 2^32 s (a shipment's seconds fit a uint32).
            emit IReadingsInbox.BreachRunShared(
                shipmentId,
                periods[p].custodian,
                reason,
                uint32(p),
                deviceId,
                uint32(periodEnd - from)
            );
            if (since <= runStart) break;
            periodEnd = since;
        }
    }

    /// @notice Charges a reading observed at `observedAt`, before the latest handover, to the period holding it:
    /// adds its excursion seconds and ORs its breaches into that period. Rare (a late upload).
    /// @return index the period's index
    /// @return custodian the period's custodian
    function chargeEarlierPeriod(
        IShipments.CustodyPeriod[] storage periods,
        uint256 observedAt,
        uint256 excursionSeconds,
        uint256 breaches
    ) external returns (uint256 index, address custodian) {
        index = periodIndexAt(periods, observedAt);
        IShipments.CustodyPeriod storage period = periods[index];
        custodian = period.custodian;
        if (excursionSeconds != 0) {
            period.excursionSeconds = SafeCast.toUint32(period.excursionSeconds + excursionSeconds);
        }
        // Breach flags fit 16 bits (one per BreachReason).
        if (breaches & ~uint256(period.breachFlags) != 0) period.breachFlags |= uint16(breaches);
    }

    /// @notice Index of the custody period holding `timestamp` (the last one that began at or before it).
    function periodIndexAt(
        IShipments.CustodyPeriod[] storage periods,
        uint256 timestamp
    ) internal view returns (uint256) {
        uint256 lo = 0;
        uint256 hi = periods.length;
        // Binary search: at most log2(MAX_CUSTODY_PERIODS) rounds.
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (periods[mid].since <= timestamp) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /// @notice Stores shipment `shipmentId` from `params`, binds its devices and opens the shipper's custody.
    /// @dev The caller checked the role, the pause and the profile id.
    function create(
        mapping(uint64 => Shipment) storage shipments,
        mapping(uint64 => IShipments.CustodyPeriod[]) storage custody,
        mapping(uint64 => IReadingsInbox.DeviceTrack) storage tracks,
        IDeviceRegistry registry,
        uint64 shipmentId,
        IShipments.ShipmentParams calldata params
    ) external {
        if (params.receiver == address(0) || params.owner == address(0)) revert IShipments.ShipmentPartyZero();
        uint256 deviceCount = params.deviceIds.length;
        if (deviceCount == 0 || deviceCount > MAX_DEVICES_PER_SHIPMENT) {
            revert IShipments.ShipmentDeviceCountInvalid(deviceCount);
        }
        uint40 now_ = SafeCast.toUint40(block.timestamp);
        Shipment storage s = shipments[shipmentId];
        // Status first: a device listed twice then finds itself on an open shipment (this one) and is refused.
        s.status = IShipments.ShipmentStatus.Created;
        for (uint256 i = 0; i < deviceCount; ++i) {
            _bindDevice(shipments, tracks, registry, shipmentId, params.deviceIds[i]);
        }
        s.shipper = msg.sender;
        s.profileId = params.profileId;
        s.receiver = params.receiver;
        s.owner = params.owner;
        s.createdAt = now_;
        s.plannedStartAt = params.plannedStartAt;
        s.externalRef = params.externalRef;
        s.deviceIds = params.deviceIds;
        custody[shipmentId].push(
            IShipments.CustodyPeriod({custodian: msg.sender, since: now_, excursionSeconds: 0, breachFlags: 0})
        );
        emit IShipments.ShipmentCreated(
            shipmentId,
            msg.sender,
            params.receiver,
            params.owner,
            params.profileId,
            params.deviceIds,
            params.plannedStartAt,
            params.externalRef
        );
        emit IShipments.CustodyTransferred(shipmentId, address(0), msg.sender, 0, now_);
    }

    /// @notice Whether shipment `s` still holds its devices: open (created, in transit, delivered), or cancelled
    /// after it started and less than {CANCELLED_DEVICE_HOLD_SECONDS} ago.
    function holdsDevices(Shipment storage s) internal view returns (bool) {
        IShipments.ShipmentStatus status = s.status;
        if (
            status == IShipments.ShipmentStatus.Created ||
            status == IShipments.ShipmentStatus.InTransit ||
            status == IShipments.ShipmentStatus.Delivered
        ) return true;
        return
            status == IShipments.ShipmentStatus.Cancelled &&
            s.startedAt != 0 &&
            block.timestamp < uint256(s.decidedAt) + CANCELLED_DEVICE_HOLD_SECONDS;
    }

    function _bindDevice(
        mapping(uint64 => Shipment) storage shipments,
        mapping(uint64 => IReadingsInbox.DeviceTrack) storage tracks,
        IDeviceRegistry registry,
        uint64 shipmentId,
        uint64 deviceId
    ) private {
        IDeviceRegistry.VerificationKey memory key = registry.verificationKey(deviceId);
        if (key.keyType == IDeviceRegistry.KeyType.None || key.revokedAtBlock != 0) {
            revert IShipments.ShipmentDeviceUnavailable(deviceId);
        }
        // The device owner's consent: no shipper can take another owner's logger for its own shipment.
        if (!registry.mayBind(deviceId, msg.sender)) revert IShipments.ShipmentDeviceNotApproved(deviceId, msg.sender);
        IReadingsInbox.DeviceTrack storage t = tracks[deviceId];
        if (t.shipmentId != 0 && holdsDevices(shipments[t.shipmentId])) {
            revert IShipments.ShipmentDeviceUnavailable(deviceId);
        }
        // The device's chain starts anew: its first reading here is the one whose predecessor is before the start.
        t.shipmentId = shipmentId;
        t.lastObservedAt = 0;
        t.excursionStartedAt = 0;
        t.freezeStartedAt = 0;
    }
}
