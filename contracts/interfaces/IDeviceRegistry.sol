// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title IDeviceRegistry
/// @notice Registry of temperature loggers and the keys their readings are signed with.
/// @dev A device is identified by a non-zero 64-bit id chosen at provisioning (e.g. derived from its serial
/// number). Its key lives in the logger's secure element: secp256k1 (stored as the key's Ethereum address) or
/// P-256 / secp256r1 (stored as the public key x, y). Revocation takes effect from the block after the one it
/// was mined in, so every reading submitted in that block is judged against one consistent registry state.
interface IDeviceRegistry {
    /// @notice Curve of a device key. `None` marks an unknown device.
    enum KeyType {
        None,
        Secp256k1,
        P256
    }

    /// @notice What the readings inbox needs to verify a device's readings.
    /// @param keyType curve of the current key (`None` if the device is unknown)
    /// @param intervalSeconds recording interval: every reading stands for this much time
    /// @param revokedAtBlock block in which the device was revoked, 0 while active
    /// @param signer Ethereum address of the secp256k1 key (zero for P-256)
    /// @param qx P-256 public key x (zero for secp256k1)
    /// @param qy P-256 public key y (zero for secp256k1)
    /// @param keyValidFrom first observation time this key verifies (0 for a device's first key: any earlier time)
    /// @param keyValidUntil observation time from which the next key verifies instead (0: this is the current key)
    /// @param revokedFrom observation time from which the device is distrusted (0 while active): readings observed
    /// from then on are refused, earlier ones still verify
    struct VerificationKey {
        KeyType keyType;
        uint32 intervalSeconds;
        uint40 revokedAtBlock;
        address signer;
        bytes32 qx;
        bytes32 qy;
        uint40 keyValidFrom;
        uint40 keyValidUntil;
        uint40 revokedFrom;
    }

    /// @notice Full registry record of a device.
    struct DeviceInfo {
        address owner;
        uint40 registeredAt;
        KeyType keyType;
        uint32 intervalSeconds;
        uint40 revokedAtBlock;
        address signer;
        bytes32 qx;
        bytes32 qy;
    }

    /// @notice The device had MAX_KEYS_PER_DEVICE keys already: register it again under a new id.
    error DeviceKeyHistoryFull(uint64 deviceId);
    /// @notice A revocation may not name a distrust time in the future.
    error DeviceRevocationTimeInvalid(uint64 deviceId, uint40 distrustedFrom);

    /// @notice The device id is zero.
    error DeviceIdZero();
    /// @notice A device with this id is already registered.
    error DeviceAlreadyRegistered(uint64 deviceId);
    /// @notice No device with this id is registered.
    error DeviceUnknown(uint64 deviceId);
    /// @notice The device was revoked; it can no longer be changed.
    error DeviceAlreadyRevoked(uint64 deviceId);
    /// @notice The caller is neither the device's owner nor a device manager.
    error DeviceUnauthorized(uint64 deviceId, address caller);
    /// @notice The owner address is zero.
    error DeviceOwnerZero();
    /// @notice The recording interval is outside 1 s .. `MAX_INTERVAL_SECONDS`.
    error DeviceIntervalInvalid(uint32 intervalSeconds);
    /// @notice The secp256k1 signer address is zero.
    error DeviceSignerZero();
    /// @notice The P-256 public key is not a point on the curve.
    error DeviceP256KeyInvalid(bytes32 qx, bytes32 qy);

    /// @notice A device was registered.
    event DeviceRegistered(uint64 indexed deviceId, address indexed owner, uint32 intervalSeconds);
    /// @notice A device's key was set, at registration or by rotation. The oracle keeps its key cache in sync
    /// from this event.
    event DeviceKeySet(uint64 indexed deviceId, KeyType keyType, address signer, bytes32 qx, bytes32 qy);
    /// @notice Key number `keyIndex` of the device verifies readings observed from `validFrom` on (the previous key
    /// keeps verifying earlier ones): a rotation is never retroactive.
    event DeviceKeyValidFrom(uint64 indexed deviceId, uint256 keyIndex, uint40 validFrom);
    /// @notice Readings of the device observed from `distrustedFrom` on are refused (readings already recorded stay).
    event DeviceDistrusted(uint64 indexed deviceId, uint40 distrustedFrom, address indexed by);
    /// @notice A device was revoked; its readings are refused from block `revokedAtBlock + 1` on.
    event DeviceRevoked(uint64 indexed deviceId, uint40 revokedAtBlock);
    /// @notice A device changed owner.
    event DeviceOwnerChanged(uint64 indexed deviceId, address indexed previousOwner, address indexed newOwner);
    /// @notice `owner` allowed (or stopped allowing) `shipper` to bind `owner`'s devices to its shipments.
    event ShipperApprovalSet(address indexed owner, address indexed shipper, bool approved);

    /// @notice Registers a device with a secp256k1 key.
    /// @param deviceId non-zero device id, unique in this registry
    /// @param owner the party that owns the logger (may rotate, revoke and transfer it)
    /// @param intervalSeconds recording interval of the logger
    /// @param signer Ethereum address derived from the device's secp256k1 public key
    function registerSecp256k1Device(uint64 deviceId, address owner, uint32 intervalSeconds, address signer) external;

    /// @notice Registers a device with a P-256 (secp256r1) key, e.g. from a secure element.
    /// @param deviceId non-zero device id, unique in this registry
    /// @param owner the party that owns the logger
    /// @param intervalSeconds recording interval of the logger
    /// @param qx public key x coordinate
    /// @param qy public key y coordinate
    function registerP256Device(
        uint64 deviceId,
        address owner,
        uint32 intervalSeconds,
        bytes32 qx,
        bytes32 qy
    ) external;

    /// @notice Replaces a device's key with a secp256k1 key. Readings signed with the old key are refused
    /// from now on. Callable by the owner or a device manager.
    function rotateSecp256k1Key(uint64 deviceId, address signer) external;

    /// @notice Replaces a device's key with a P-256 key. Callable by the owner or a device manager.
    function rotateP256Key(uint64 deviceId, bytes32 qx, bytes32 qy) external;

    /// @notice Revokes a device for good. Its readings are refused from the next block on.
    /// Callable by the owner or a device manager.
    function revokeDevice(uint64 deviceId) external;

    /// @notice Transfers ownership of a device. Callable by the owner or a device manager.
    function transferDeviceOwnership(uint64 deviceId, address newOwner) external;

    /// @notice The caller, as a device owner, allows `shipper` to bind every device it owns (now or later) to
    /// `shipper`'s shipments, or withdraws that consent. A binding already made is not undone.
    function setShipperApproval(address shipper, bool approved) external;

    /// @notice Whether `shipper` may bind `deviceId` to a shipment: it owns the device, or its owner approved it.
    function mayBind(uint64 deviceId, address shipper) external view returns (bool);

    /// @notice The key material and status the readings inbox verifies against.
    /// @dev Returns `keyType == None` for an unknown device instead of reverting, so a batch can skip it.
    function verificationKey(uint64 deviceId) external view returns (VerificationKey memory);

    /// @notice The key that verifies readings of `deviceId` observed at `observedAt` (with its validity), and the
    /// device's revocation time.
    function verificationKeyAt(uint64 deviceId, uint40 observedAt) external view returns (VerificationKey memory);

    /// @notice Distrusts the device from `distrustedFrom` (at most now), e.g. the time a key was found compromised:
    /// readings observed from then on are refused; readings already recorded stay. Device manager only (a party
    /// to a shipment cannot void another's unrecorded evidence; an owner revokes from now with {revokeDevice}).
    function revokeDeviceFrom(uint64 deviceId, uint40 distrustedFrom) external;

    /// @notice The full record of a device. Reverts with {DeviceUnknown} if it is not registered.
    function device(uint64 deviceId) external view returns (DeviceInfo memory);

    /// @notice Whether a device is registered and not revoked. A device revoked in this block is already
    /// inactive here (no new shipment takes it), though the inbox accepts its readings until the block ends.
    function isActive(uint64 deviceId) external view returns (bool);
}
