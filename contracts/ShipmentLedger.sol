// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IReadingsInbox} from "./interfaces/IReadingsInbox.sol";
import {IShipments} from "./interfaces/IShipments.sol";
import {ShipmentBook} from "./libraries/ShipmentBook.sol";

/// @title ShipmentLedger
/// @notice Rule profiles, shipments, custody and QA disposition: the digital twin of each consignment.
/// @dev Roles: `SHIPPER_ROLE` creates shipments, `QA_ROLE` creates profiles and may decide any delivered
/// shipment, `GUARDIAN_ROLE` pauses. Everything else is decided by the parties themselves: the current
/// custodian hands over, the next one accepts, the receiver releases or rejects.
abstract contract ShipmentLedger is IShipments, AccessControl, Pausable, EIP712 {
    /// @notice Role that creates shipments (as their shipper).
    bytes32 public constant SHIPPER_ROLE = keccak256("SHIPPER_ROLE");
    /// @notice Role that creates rule profiles and may release or reject any delivered shipment.
    bytes32 public constant QA_ROLE = keccak256("QA_ROLE");
    /// @notice Role that pauses and unpauses every state-changing entry point.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice Most devices one shipment carries.
    uint256 public constant MAX_DEVICES_PER_SHIPMENT = ShipmentBook.MAX_DEVICES_PER_SHIPMENT;
    /// @notice Most custody periods one shipment records (bounds every loop over the history).
    uint256 public constant MAX_CUSTODY_PERIODS = ShipmentBook.MAX_CUSTODY_PERIODS;

    /// @notice EIP-712 type of the next custodian's acceptance of a one-transaction handover.
    bytes32 public constant CUSTODY_ACCEPTANCE_TYPEHASH = keccak256(
        "CustodyAcceptance(uint256 shipmentId,address custodian,uint256 nonce,uint256 deadline)"
    );

    /// @notice The device registry readings are verified against.
    IDeviceRegistry public immutable DEVICE_REGISTRY;
    /// @notice The MKT factor table (see {MktLib}).
    address public immutable MKT_TABLE;

    uint32 private _profileCount;
    uint64 private _shipmentCount;
    mapping(uint32 profileId => TemperatureProfile) internal _profiles;
    mapping(uint32 profileId => uint256) internal _mktLimitFactors;
    mapping(uint64 shipmentId => ShipmentBook.Shipment) internal _shipments;
    mapping(uint64 shipmentId => CustodyPeriod[]) internal _custody;
    mapping(uint64 shipmentId => CustodyOffer) internal _offers;
    mapping(uint64 deviceId => IReadingsInbox.DeviceTrack) internal _tracks;

    constructor(IDeviceRegistry registry, address mktTable) {
        DEVICE_REGISTRY = registry;
        MKT_TABLE = mktTable;
    }

    // ---------------------------------------------------------------- profiles

    /// @inheritdoc IShipments
    function createProfile(
        TemperatureProfile calldata p
    ) external onlyRole(QA_ROLE) whenNotPaused returns (uint32 profileId) {
        profileId = ++_profileCount;
        ShipmentBook.storeProfile(_profiles, _mktLimitFactors, MKT_TABLE, profileId, p);
    }

    // ---------------------------------------------------------------- shipments

    /// @inheritdoc IShipments
    function createShipment(
        ShipmentParams calldata params
    ) external onlyRole(SHIPPER_ROLE) whenNotPaused returns (uint64 shipmentId) {
        if (params.profileId == 0 || params.profileId > _profileCount) revert ProfileUnknown(params.profileId);
        shipmentId = ++_shipmentCount;
        ShipmentBook.create(_shipments, _custody, _tracks, DEVICE_REGISTRY, shipmentId, params);
    }

    /// @inheritdoc IShipments
    function startShipment(uint64 shipmentId) external whenNotPaused {
        ShipmentBook.startBy(_requireShipment(shipmentId), _custody[shipmentId], shipmentId);
    }

    /// @inheritdoc IShipments
    function cancelShipment(uint64 shipmentId) external whenNotPaused {
        ShipmentBook.cancel(
            _requireShipment(shipmentId),
            _custody[shipmentId],
            shipmentId,
            hasRole(DEFAULT_ADMIN_ROLE, msg.sender)
        );
        delete _offers[shipmentId];
    }

    /// @inheritdoc IShipments
    function release(uint64 shipmentId) external whenNotPaused {
        ShipmentBook.decide(_requireShipment(shipmentId), shipmentId, true, 0, hasRole(QA_ROLE, msg.sender));
    }

    /// @inheritdoc IShipments
    function reject(uint64 shipmentId, bytes32 reasonCode) external whenNotPaused {
        ShipmentBook.decide(_requireShipment(shipmentId), shipmentId, false, reasonCode, hasRole(QA_ROLE, msg.sender));
    }

    /// @inheritdoc IShipments
    function decideWithNote(
        uint64 shipmentId,
        bool release_,
        bytes32 reasonCode,
        string calldata note
    ) external whenNotPaused {
        ShipmentBook.decideWithNote(
            _requireShipment(shipmentId),
            shipmentId,
            release_,
            reasonCode,
            note,
            hasRole(QA_ROLE, msg.sender)
        );
    }

    // ---------------------------------------------------------------- custody

    /// @inheritdoc IShipments
    function offerCustody(uint64 shipmentId, address to, uint40 deadline) external whenNotPaused {
        ShipmentBook.Shipment storage s = _requireShipment(shipmentId);
        ShipmentBook.offer(s, _custody[shipmentId], _offers, shipmentId, to, deadline, _boundaryFrom(shipmentId));
    }

    /// @inheritdoc IShipments
    function cancelCustodyOffer(uint64 shipmentId) external whenNotPaused {
        _requireShipment(shipmentId);
        ShipmentBook.withdrawOffer(_custody[shipmentId], _offers, shipmentId);
    }

    /// @inheritdoc IShipments
    function acceptCustody(uint64 shipmentId) external whenNotPaused {
        ShipmentBook.acceptOffer(_requireShipment(shipmentId), _custody[shipmentId], _offers, shipmentId);
    }

    /// @inheritdoc IShipments
    function transferCustodyWithSignature(
        uint64 shipmentId,
        address to,
        uint256 deadline,
        bytes calldata signature
    ) external whenNotPaused {
        ShipmentBook.Shipment storage s = _requireShipment(shipmentId);
        if (block.timestamp > deadline) revert CustodyDeadlinePassed(shipmentId, deadline);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(CUSTODY_ACCEPTANCE_TYPEHASH, shipmentId, to, _custody[shipmentId].length, deadline))
        );
        delete _offers[shipmentId];
        ShipmentBook.transferCustodySigned(
            s,
            _custody[shipmentId],
            shipmentId,
            to,
            _boundaryFrom(shipmentId),
            digest,
            signature
        );
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IShipments
    function profile(uint32 profileId) external view returns (TemperatureProfile memory p) {
        if (profileId == 0 || profileId > _profileCount) revert ProfileUnknown(profileId);
        p = _profiles[profileId];
    }

    /// @inheritdoc IShipments
    function shipment(uint64 shipmentId) external view returns (ShipmentInfo memory) {
        return ShipmentBook.info(_requireShipment(shipmentId), _custody[shipmentId]);
    }

    /// @inheritdoc IShipments
    function custodyHistory(uint64 shipmentId) external view returns (CustodyPeriod[] memory) {
        _requireShipment(shipmentId);
        return _custody[shipmentId];
    }

    /// @inheritdoc IShipments
    function custodyOffer(uint64 shipmentId) external view returns (CustodyOffer memory) {
        return _offers[shipmentId];
    }

    /// @inheritdoc IShipments
    function handoverNonce(uint64 shipmentId) external view returns (uint256) {
        return _custody[shipmentId].length;
    }

    // ---------------------------------------------------------------- internals

    /// @dev The earliest custody boundary possible now: this block's time, or one second after the latest
    /// reading already recorded for the shipment (a device clock may lead the block time by the skew). No
    /// reading already charged to the current custodian can fall after the boundary.
    function _boundaryFrom(uint64 shipmentId) private view returns (uint40) {
        uint256 latest = _latestObservedAt(shipmentId);
        return SafeCast.toUint40(latest >= block.timestamp ? latest + 1 : block.timestamp);
    }

    /// @dev The latest observation time recorded for the shipment (0 if none).
    function _latestObservedAt(uint64 shipmentId) internal view virtual returns (uint256);

    function _requireShipment(uint64 shipmentId) internal view returns (ShipmentBook.Shipment storage s) {
        s = _shipments[shipmentId];
        if (s.status == ShipmentStatus.None) revert ShipmentUnknown(shipmentId);
    }
}
