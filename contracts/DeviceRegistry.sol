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

    mapping(uint64 deviceId => Device) private _devices;
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
        uint40 atBlock = SafeCast.toUint40(block.number);
        _devices[deviceId].revokedAtBlock = atBlock;
        emit DeviceRevoked(deviceId, atBlock);
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
        emit DeviceKeySet(deviceId, KeyType.Secp256k1, signer, bytes32(0), bytes32(0));
    }

    function _setP256Key(uint64 deviceId, bytes32 qx, bytes32 qy) private {
        Device storage d = _devices[deviceId];
        d.keyType = KeyType.P256;
        d.signer = address(0);
        _p256Keys[deviceId] = P256Key(qx, qy);
        emit DeviceKeySet(deviceId, KeyType.P256, address(0), qx, qy);
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
