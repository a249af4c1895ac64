// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IReadingsInbox} from "../interfaces/IReadingsInbox.sol";
import {IShipments} from "../interfaces/IShipments.sol";
import {MktLib} from "./MktLib.sol";

/// @title ShipmentBook
/// @notice The stored form of a shipment, the checks a rule profile must pass, and the creation of a shipment
/// with its device bindings.
/// @dev A linked library (external functions, called with DELEGATECALL): its code lives outside `ColdChain`,
/// which stays under EIP-170's 24,576 bytes. Only paths that run once per shipment or profile are here; the
/// ingestion path stays in `ReadingsInbox`.
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

    /// @notice Opens a custody period of `to` from `since` (starting the shipment if it was only created);
    /// delivers the shipment when `to` is its receiver. The caller checked who may hand over, and `since`.
    function transferCustody(
        Shipment storage s,
        IShipments.CustodyPeriod[] storage periods,
        uint64 shipmentId,
        address to,
        uint40 since
    ) external {
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
        // The replay window (highestSequence and the bitmap) carries over: a sequence is accepted once, ever.
        t.shipmentId = shipmentId;
        t.lastObservedAt = 0;
        t.excursionStartedAt = 0;
        t.freezeStartedAt = 0;
    }
}
