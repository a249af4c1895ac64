// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";

/// @title DeviceRegistry
/// @notice Registry of temperature loggers, their owners, recording intervals and signing keys.
/// @dev Role-gated: `DEVICE_MANAGER_ROLE` registers devices; a device's owner or a manager rotates, revokes
/// and transfers it; `GUARDIAN_ROLE` pauses every state-changing entry point.
contract DeviceRegistry is IDeviceRegistry, AccessControl, Pausable {
    /// @notice Role that registers devices and may manage any device.
    bytes32 public constant DEVICE_MANAGER_ROLE = keccak256("DEVICE_MANAGER_ROLE");
    /// @notice Role that pauses and unpauses the registry.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice Longest accepted recording interval (one day).
    uint32 public constant MAX_INTERVAL_SECONDS = 1 days;
    /// @notice Most keys one device has over its life (bounds the lookup of a key by time).
    uint256 public constant MAX_KEYS_PER_DEVICE = 32;

    /// @dev Packed into two slots:
    /// slot 0: signer (160) | keyType (8) | intervalSeconds (32) | revokedAtBlock (40)  = 240 bits
    /// slot 1: owner (160) | registeredAt (40)                                          = 200 bits
    struct Device {
        address signer;
        KeyType keyType;
        uint32 intervalSeconds;
        uint40 revokedAtBlock;
        address owner;
        uint40 registeredAt;
    }

    struct P256Key {
        bytes32 qx;
        bytes32 qy;
    }

    /// @dev One key of a device's history: signer (160) | keyType (8) | validFrom (40) = 208 bits.
    struct KeyRecord {
        address signer;
        KeyType keyType;
        uint40 validFrom;
    }

    /// @dev Keys and revocation time of a device: keyCount (16) | revokedFrom (40).
    struct KeyHistory {
        uint16 keyCount;
        uint40 revokedFrom;
        mapping(uint256 index => KeyRecord) keys;
        mapping(uint256 index => P256Key) p256Keys;
    }

    mapping(uint64 deviceId => Device) private _devices;
    mapping(uint64 deviceId => KeyHistory) private _history;
    mapping(uint64 deviceId => P256Key) private _p256Keys;
    mapping(address owner => mapping(address shipper => bool)) private _shipperApprovals;

    /// @param admin receives `DEFAULT_ADMIN_ROLE` (grants and revokes the other roles)
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IDeviceRegistry
    function registerSecp256k1Device(
        uint64 deviceId,
        address owner,
        uint32 intervalSeconds,
        address signer
    ) external onlyRole(DEVICE_MANAGER_ROLE) whenNotPaused {
        if (signer == address(0)) revert DeviceSignerZero();
        _register(deviceId, owner, intervalSeconds);
        _setSecp256k1Key(deviceId, signer);
    }

    /// @inheritdoc IDeviceRegistry
    function registerP256Device(
        uint64 deviceId,
        address owner,
        uint32 intervalSeconds,
        bytes32 qx,
        bytes32 qy
    ) external onlyRole(DEVICE_MANAGER_ROLE) whenNotPaused {
        if (!P256.isValidPublicKey(qx, qy)) revert DeviceP256KeyInvalid(qx, qy);
        _register(deviceId, owner, intervalSeconds);
        _setP256Key(deviceId, qx, qy);
    }

    /// @inheritdoc IDeviceRegistry
    function rotateSecp256k1Key(uint64 deviceId, address signer) external whenNotPaused {
        _requireManageable(deviceId);
        if (signer == address(0)) revert DeviceSignerZero();
        _setSecp256k1Key(deviceId, signer);
    }

    /// @inheritdoc IDeviceRegistry
    function rotateP256Key(uint64 deviceId, bytes32 qx, bytes32 qy) external whenNotPaused {
        _requireManageable(deviceId);
        if (!P256.isValidPublicKey(qx, qy)) revert DeviceP256KeyInvalid(qx, qy);
        _setP256Key(deviceId, qx, qy);
    }

    /// @inheritdoc IDeviceRegistry
    function revokeDevice(uint64 deviceId) external whenNotPaused {
        _requireManageable(deviceId);
        _revoke(deviceId, SafeCast.toUint40(block.timestamp));
    }

    /// @inheritdoc IDeviceRegistry
    function revokeDeviceFrom(
        uint64 deviceId,
        uint40 distrustedFrom
    ) external onlyRole(DEVICE_MANAGER_ROLE) whenNotPaused {
        _requireManageable(deviceId);
        if (distrustedFrom > block.timestamp) revert DeviceRevocationTimeInvalid(deviceId, distrustedFrom);
        _revoke(deviceId, distrustedFrom);
    }

    function _revoke(uint64 deviceId, uint40 distrustedFrom) private {
        uint40 atBlock = SafeCast.toUint40(block.number);
        _devices[deviceId].revokedAtBlock = atBlock;
        // A distrust time of 0 would read as "not revoked": the earliest time is 1.
        _history[deviceId].revokedFrom = distrustedFrom == 0 ? 1 : distrustedFrom;
        emit DeviceRevoked(deviceId, atBlock);
        emit DeviceDistrusted(deviceId, distrustedFrom, msg.sender);
    }

    /// @inheritdoc IDeviceRegistry
    function transferDeviceOwnership(uint64 deviceId, address newOwner) external whenNotPaused {
        _requireManageable(deviceId);
        if (newOwner == address(0)) revert DeviceOwnerZero();
        address previousOwner = _devices[deviceId].owner;
        _devices[deviceId].owner = newOwner;
        emit DeviceOwnerChanged(deviceId, previousOwner, newOwner);
    }

    /// @inheritdoc IDeviceRegistry
    function setShipperApproval(address shipper, bool approved) external whenNotPaused {
        _shipperApprovals[msg.sender][shipper] = approved;
        emit ShipperApprovalSet(msg.sender, shipper, approved);
    }

    /// @inheritdoc IDeviceRegistry
    function mayBind(uint64 deviceId, address shipper) external view returns (bool) {
        address owner = _devices[deviceId].owner;
        return owner == shipper || _shipperApprovals[owner][shipper];
    }

    /// @notice Pauses registration, rotation, revocation, transfers and approvals. Guardian only.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause. Guardian only.
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        _unpause();
    }

    /// @inheritdoc IDeviceRegistry
    function verificationKey(uint64 deviceId) external view returns (VerificationKey memory key) {
        Device storage d = _devices[deviceId];
        key.keyType = d.keyType;
        key.intervalSeconds = d.intervalSeconds;
        key.revokedAtBlock = d.revokedAtBlock;
        key.signer = d.signer;
        // Only P-256 devices pay for the two extra cold slots.
        if (d.keyType == KeyType.P256) {
            P256Key storage k = _p256Keys[deviceId];
            (key.qx, key.qy) = (k.qx, k.qy);
        }
        KeyHistory storage h = _history[deviceId];
        key.revokedFrom = h.revokedFrom;
        uint256 count = h.keyCount;
        if (count != 0) key.keyValidFrom = h.keys[count - 1].validFrom;
    }

    /// @inheritdoc IDeviceRegistry
    function verificationKeyAt(uint64 deviceId, uint40 observedAt) external view returns (VerificationKey memory key) {
        Device storage d = _devices[deviceId];
        KeyHistory storage h = _history[deviceId];
        key.keyType = d.keyType;
        key.intervalSeconds = d.intervalSeconds;
        key.revokedAtBlock = d.revokedAtBlock;
        key.revokedFrom = h.revokedFrom;
        // The latest key valid at observedAt; at most MAX_KEYS_PER_DEVICE steps. The first key has validFrom 0.
        uint256 i = h.keyCount;
        while (i > 1 && h.keys[i - 1].validFrom > observedAt) --i;
        if (i == 0) return key;
        KeyRecord storage r = h.keys[i - 1];
        key.keyType = r.keyType;
        key.signer = r.signer;
        key.keyValidFrom = r.validFrom;
        if (i < h.keyCount) key.keyValidUntil = h.keys[i].validFrom;
        if (r.keyType == KeyType.P256) (key.qx, key.qy) = (h.p256Keys[i - 1].qx, h.p256Keys[i - 1].qy);
    }

    /// @inheritdoc IDeviceRegistry
    function device(uint64 deviceId) external view returns (DeviceInfo memory info) {
        Device storage d = _devices[deviceId];
        if (d.keyType == KeyType.None) revert DeviceUnknown(deviceId);
        P256Key storage k = _p256Keys[deviceId];
        info = DeviceInfo({
            owner: d.owner,
            registeredAt: d.registeredAt,
            keyType: d.keyType,
            intervalSeconds: d.intervalSeconds,
            revokedAtBlock: d.revokedAtBlock,
            signer: d.signer,
            qx: k.qx,
            qy: k.qy
        });
    }

    /// @inheritdoc IDeviceRegistry
    function isActive(uint64 deviceId) external view returns (bool) {
        Device storage d = _devices[deviceId];
        return d.keyType != KeyType.None && d.revokedAtBlock == 0;
    }

    function _register(uint64 deviceId, address owner, uint32 intervalSeconds) private {
        if (deviceId == 0) revert DeviceIdZero();
        if (_devices[deviceId].keyType != KeyType.None) revert DeviceAlreadyRegistered(deviceId);
        if (owner == address(0)) revert DeviceOwnerZero();
        if (intervalSeconds == 0 || intervalSeconds > MAX_INTERVAL_SECONDS) {
            revert DeviceIntervalInvalid(intervalSeconds);
        }
        Device storage d = _devices[deviceId];
        d.owner = owner;
        d.registeredAt = SafeCast.toUint40(block.timestamp);
        d.intervalSeconds = intervalSeconds;
        emit DeviceRegistered(deviceId, owner, intervalSeconds);
    }

    function _setSecp256k1Key(uint64 deviceId, address signer) private {
        Device storage d = _devices[deviceId];
        d.keyType = KeyType.Secp256k1;
        d.signer = signer;
        delete _p256Keys[deviceId];
        _appendKey(deviceId, KeyRecord(signer, KeyType.Secp256k1, 0), P256Key(0, 0));
        emit DeviceKeySet(deviceId, KeyType.Secp256k1, signer, bytes32(0), bytes32(0));
    }

    function _setP256Key(uint64 deviceId, bytes32 qx, bytes32 qy) private {
        Device storage d = _devices[deviceId];
        d.keyType = KeyType.P256;
        d.signer = address(0);
        _p256Keys[deviceId] = P256Key(qx, qy);
        _appendKey(deviceId, KeyRecord(address(0), KeyType.P256, 0), P256Key(qx, qy));
        emit DeviceKeySet(deviceId, KeyType.P256, address(0), qx, qy);
    }

    /// @dev Adds a key to the device's history: the first one verifies every earlier observation (validFrom 0),
    /// a rotated one only observations from now on. The previous key keeps verifying what it verified.
    function _appendKey(uint64 deviceId, KeyRecord memory r, P256Key memory p) private {
        KeyHistory storage h = _history[deviceId];
        uint256 index = h.keyCount;
        if (index == MAX_KEYS_PER_DEVICE) revert DeviceKeyHistoryFull(deviceId);
        uint40 validFrom = index == 0 ? 0 : SafeCast.toUint40(block.timestamp);
        // Two rotations in one block: the later key replaces the earlier one from the same moment.
        if (index > 1 && h.keys[index - 1].validFrom == validFrom) --index;
        r.validFrom = validFrom;
        h.keys[index] = r;
        if (r.keyType == KeyType.P256) h.p256Keys[index] = p;
        h.keyCount = uint16(index + 1);
        emit DeviceKeyValidFrom(deviceId, index, validFrom);
    }

    /// @dev Reverts unless the device exists, is not revoked, and the caller is its owner or a manager.
    function _requireManageable(uint64 deviceId) private view {
        Device storage d = _devices[deviceId];
        if (d.keyType == KeyType.None) revert DeviceUnknown(deviceId);
        if (d.revokedAtBlock != 0) revert DeviceAlreadyRevoked(deviceId);
        if (msg.sender != d.owner && !hasRole(DEVICE_MANAGER_ROLE, msg.sender)) {
            revert DeviceUnauthorized(deviceId, msg.sender);
        }
    }
}
