// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IP256Verifier} from "./interfaces/IP256Verifier.sol";
import {IReadingsInbox} from "./interfaces/IReadingsInbox.sol";
import {MktLib} from "./libraries/MktLib.sol";
import {ReplayWindow} from "./libraries/ReplayWindow.sol";
import {TemperatureRules} from "./libraries/TemperatureRules.sol";
import {ShipmentLedger} from "./ShipmentLedger.sol";

/// @title ReadingsInbox
/// @notice Verifies batches of device-signed readings and applies each to its shipment's rules.
/// @dev The gas-critical path. State of the device and shipment being processed is cached in memory and
/// written back once when the batch moves to another device or shipment (a run of readings of one device
/// costs two storage writes in all, not two per reading), and no memory is allocated per reading. Calldata is
/// decoded with `calldataload` from the packed format of {IReadingsInbox}; hashing uses scratch memory.
abstract contract ReadingsInbox is IReadingsInbox, ShipmentLedger {
    /// @notice EIP-712 type of a single reading.
    bytes32 public constant READING_TYPEHASH = keccak256(
        "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags)"
    );
    /// @notice EIP-712 type of a device window; `samples` is hashed as bytes (keccak256 of the packed samples).
    bytes32 public constant READING_WINDOW_TYPEHASH = keccak256(
        abi.encodePacked(
            "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,",
            "uint32 intervalSeconds,bytes samples)"
        )
    );
    /// @notice Version byte that starts every batch.
    uint8 public constant BATCH_VERSION = 1;
    /// @notice Most readings in one device window (the width of the replay window).
    uint256 public constant MAX_WINDOW_READINGS = 256;

    uint256 private constant KIND_READINGS = 1;
    uint256 private constant KIND_WINDOW = 2;
    uint256 private constant READINGS_HEADER_BYTES = 11; // kind:1 deviceId:8 count:2
    uint256 private constant READING_BYTES = 76; // sequence:4 observedAt:5 temp:2 flags:1 signature:64
    uint256 private constant WINDOW_HEADER_BYTES = 24; // kind:1 deviceId:8 firstSeq:4 firstAt:5 interval:4 count:2
    uint256 private constant SAMPLE_BYTES = 3; // temp:2 flags:1
    uint256 private constant SIGNATURE_BYTES = 64;
    uint8 private constant NO_SKIP = type(uint8).max;

    /// @dev secp256r1 group order and half of it (low-s bound).
    uint256 private constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
    uint256 private constant P256_HALF_N = 0x7FFFFFFF800000007FFFFFFFFFFFFFFFDE737D56D38BCF4279DCE5617E3192A8;
    uint256 private constant P256_UNKNOWN = 0;
    uint256 private constant P256_NATIVE = 1;
    uint256 private constant P256_ABSENT = 2;

    /// @notice Verifier used for P-256 signatures where the precompile at 0x100 is missing.
    IP256Verifier public immutable P256_FALLBACK;

    mapping(uint64 shipmentId => Condition) private _conditions;
    mapping(uint64 deviceId => uint256) private _replayBitmaps;
    uint32 internal _maxFutureSkewSeconds;

    /// @dev The device under way, in full words (no masking per access). Written back once per run.
    struct DeviceCache {
        uint64 id;
        uint256 skip;
        IDeviceRegistry.KeyType keyType;
        uint256 intervalSeconds;
        address signer;
        bytes32 qx;
        bytes32 qy;
        uint64 shipmentId;
        uint256 highestSequence;
        uint256 bitmap;
        TemperatureRules.DeviceState state;
        bool dirty;
    }

    /// @dev The shipment under way: rules, condition and current custody period, in full words.
    struct ShipmentCache {
        uint64 id;
        bool active;
        uint256 startedAt;
        uint256 deliveredAt;
        TemperatureRules.Rules rules;
        TemperatureRules.ShipmentState state;
        address custodian;
        uint256 custodySince;
        uint256 custodyIndex;
        uint256 custodyExcursionSeconds;
        uint256 custodyBreachFlags;
        bool dirty;
    }

    struct Batch {
        bytes32 domainSeparator;
        uint256 latestObservedAt;
        uint256 p256Support;
        uint256 mktTable;
        uint256 accepted;
        uint256 skipped;
        DeviceCache device;
        ShipmentCache shipment;
        TemperatureProfile profile;
    }

    constructor(IP256Verifier p256Fallback) {
        P256_FALLBACK = p256Fallback;
    }

    /// @inheritdoc IReadingsInbox
    function submitReadings(bytes calldata batch) external whenNotPaused returns (uint256 accepted, uint256 skipped) {
        if (batch.length == 0 || uint8(batch[0]) != BATCH_VERSION) revert BatchMalformed(0);
        Batch memory b;
        b.domainSeparator = _domainSeparatorV4();
        b.latestObservedAt = block.timestamp + _maxFutureSkewSeconds;
        uint256 offset = 1;
        while (offset < batch.length) {
            uint256 kind = uint8(batch[offset]);
            if (kind == KIND_READINGS) offset = _processReadings(b, batch, offset);
            else if (kind == KIND_WINDOW) offset = _processWindow(b, batch, offset);
            else revert BatchMalformed(offset);
        }
        _flushDevice(b.device);
        _flushShipment(b.shipment);
        return (b.accepted, b.skipped);
    }

    /// @inheritdoc IReadingsInbox
    function condition(uint64 shipmentId) external view returns (Condition memory) {
        _requireShipment(shipmentId);
        return _conditions[shipmentId];
    }

    /// @inheritdoc IReadingsInbox
    function deviceTrack(uint64 deviceId) external view returns (DeviceTrack memory) {
        return _tracks[deviceId];
    }

    /// @inheritdoc IReadingsInbox
    function isSequenceUsed(uint64 deviceId, uint32 sequence) external view returns (bool) {
        return ReplayWindow.isUsed(_tracks[deviceId].highestSequence, _replayBitmaps[deviceId], sequence);
    }

    /// @inheritdoc IReadingsInbox
    function meanKineticTemperature(uint64 shipmentId) external view returns (bool known, int256 mktCentiC) {
        _requireShipment(shipmentId);
        Condition storage c = _conditions[shipmentId];
        if (c.mktSeconds == 0) return (false, 0);
        return (true, MktLib.meanKineticCentiC(MKT_TABLE, c.mktWeightedSum, c.mktSeconds));
    }

    /// @inheritdoc IReadingsInbox
    function maxFutureSkewSeconds() external view returns (uint32) {
        return _maxFutureSkewSeconds;
    }

    // ---------------------------------------------------------------- items

    /// @dev READINGS item: a run of single readings of one device, each with its own signature.
    function _processReadings(Batch memory b, bytes calldata batch, uint256 offset) private returns (uint256 end) {
        uint64 deviceId = uint64(_read(batch, offset + 1, 8));
        uint256 count = _read(batch, offset + 9, 2);
        uint256 start = offset + READINGS_HEADER_BYTES;
        end = start + count * READING_BYTES;
        if (count == 0 || end > batch.length) revert BatchMalformed(offset);
        _selectDevice(b, deviceId);
        for (uint256 p = start; p < end; p += READING_BYTES) _processReading(b, batch, p, deviceId);
    }

    function _processReading(Batch memory b, bytes calldata batch, uint256 p, uint64 deviceId) private {
        // One word holds sequence (4 bytes), observedAt (5), temperature (2) and flags (1).
        uint256 head = uint256(_word(batch, p));
        uint256 sequence = head >> 224;
        uint256 observedAt = (head >> 184) & 0xffffffffff;
        uint256 rawTemp = (head >> 168) & 0xffff;
        uint256 flags = (head >> 160) & 0xff;
        int256 temp = _signExtend16(rawTemp);
        uint256 reason = b.device.skip;
        if (reason == NO_SKIP) {
            bytes32 digest = _readingDigest(b.domainSeparator, deviceId, sequence, observedAt, temp, flags);
            if (!_verify(b, digest, _word(batch, p + 12), _word(batch, p + 44))) {
                reason = uint256(SkipReason.BadSignature);
            } else {
                reason = _admit(b, sequence, 1, observedAt, observedAt);
            }
        }
        if (reason != NO_SKIP) {
            _skip(b, deviceId, sequence, 1, reason);
            return;
        }
        _apply(b, sequence, observedAt, temp, flags);
        unchecked {
            ++b.accepted;
        }
        emit ReadingRecorded(
            b.shipment.id,
            bytes32(
                (uint256(deviceId) << 192) | (sequence << 160) | (observedAt << 120) | (rawTemp << 104) | (flags << 96)
            )
        );
    }

    /// @dev WINDOW item: consecutive readings of one device under one signature.
    function _processWindow(Batch memory b, bytes calldata batch, uint256 offset) private returns (uint256 end) {
        uint256 count = _read(batch, offset + 22, 2);
        uint256 samplesStart = offset + WINDOW_HEADER_BYTES;
        uint256 samplesEnd = samplesStart + count * SAMPLE_BYTES;
        end = samplesEnd + SIGNATURE_BYTES;
        if (end > batch.length) revert BatchMalformed(offset);
        uint64 deviceId = uint64(_read(batch, offset + 1, 8));
        uint256 firstSequence = _read(batch, offset + 9, 4);
        uint256 firstObservedAt = _read(batch, offset + 13, 5);
        uint256 interval = _read(batch, offset + 18, 4);
        _selectDevice(b, deviceId);

        uint256 reason = b.device.skip;
        if (
            reason == NO_SKIP &&
            (count == 0 ||
                count > MAX_WINDOW_READINGS ||
                interval != b.device.intervalSeconds ||
                firstSequence + count - 1 > type(uint32).max)
        ) reason = uint256(SkipReason.MalformedItem);
        if (reason == NO_SKIP) {
            bytes32 digest = _windowDigest(
                b.domainSeparator,
                deviceId,
                firstSequence,
                firstObservedAt,
                interval,
                batch[samplesStart:samplesEnd]
            );
            if (!_verify(b, digest, _word(batch, samplesEnd), _word(batch, samplesEnd + 32))) {
                reason = uint256(SkipReason.BadSignature);
            } else {
                reason = _admit(b, firstSequence, count, firstObservedAt, firstObservedAt + (count - 1) * interval);
            }
        }
        if (reason != NO_SKIP) {
            _skip(b, deviceId, firstSequence, count, reason);
            return end;
        }
        // count <= 256, sequences and times fit (checked above): nothing here overflows.
        unchecked {
            uint256 observedAt = firstObservedAt;
            for (uint256 i = 0; i < count; ++i) {
                uint256 sample = _read(batch, samplesStart + i * SAMPLE_BYTES, SAMPLE_BYTES);
                _apply(b, firstSequence + i, observedAt, _signExtend16(sample >> 8), sample & 0xff);
                observedAt += interval;
            }
            b.accepted += count;
        }
        emit WindowRecorded(
            b.shipment.id,
            deviceId,
            uint32(firstSequence),
            uint40(firstObservedAt),
            uint32(interval),
            batch[samplesStart:samplesEnd]
        );
    }

    /// @dev Checks time and sequence of an item whose signature verified, and marks its sequences used.
    /// @return reason NO_SKIP, or the SkipReason to skip the item with
    function _admit(
        Batch memory b,
        uint256 firstSequence,
        uint256 count,
        uint256 firstObservedAt,
        uint256 lastObservedAt
    ) private pure returns (uint256 reason) {
        if (lastObservedAt > b.latestObservedAt) return uint256(SkipReason.FutureTimestamp);
        ShipmentCache memory s = b.shipment;
        if (firstObservedAt < s.startedAt || (s.deliveredAt != 0 && lastObservedAt > s.deliveredAt)) {
            return uint256(SkipReason.OutsideShipmentWindow);
        }
        DeviceCache memory d = b.device;
        (ReplayWindow.Status status, uint32 highest, uint256 bitmap) = ReplayWindow.tryMark(
            uint32(d.highestSequence),
            d.bitmap,
            firstSequence,
            count
        );
        if (status == ReplayWindow.Status.Stale) return uint256(SkipReason.StaleSequence);
        if (status == ReplayWindow.Status.Duplicate) return uint256(SkipReason.DuplicateSequence);
        d.highestSequence = highest;
        d.bitmap = bitmap;
        d.dirty = true;
        return NO_SKIP;
    }

    /// @dev Runs the rules for one accepted reading and charges what it raises to the custodian of its time.
    function _apply(Batch memory b, uint256 sequence, uint256 observedAt, int256 temp, uint256 flags) private {
        uint256 table = b.mktTable;
        if (table == 0) {
            table = MktLib.loadIntoMemory(MKT_TABLE);
            b.mktTable = table;
        }
        ShipmentCache memory s = b.shipment;
        DeviceCache memory d = b.device;
        (uint256 breaches, uint256 excursionSeconds) = TemperatureRules.apply_(
            s.rules,
            s.state,
            d.state,
            observedAt,
            temp,
            flags,
            d.intervalSeconds,
            MktLib.factorIn(table, temp)
        );
        s.dirty = true;
        if (breaches != 0 || excursionSeconds != 0) _charge(s, d.id, sequence, observedAt, breaches, excursionSeconds);
    }

    /// @dev Charges excursion seconds and breaches to the custody period containing `observedAt`; emits one
    /// {BreachRecorded} per kind of breach new to that period.
    function _charge(
        ShipmentCache memory s,
        uint64 deviceId,
        uint256 sequence,
        uint256 observedAt,
        uint256 breaches,
        uint256 excursionSeconds
    ) private {
        uint256 index;
        uint256 fresh;
        address custodian;
        if (observedAt >= s.custodySince) {
            index = s.custodyIndex;
            custodian = s.custodian;
            fresh = breaches & ~s.custodyBreachFlags;
            // Bounded by the shipment's cumulative excursion (see TemperatureRules.apply_).
            unchecked {
                s.custodyExcursionSeconds += excursionSeconds;
            }
            s.custodyBreachFlags |= fresh;
        } else {
            // A late reading from before the latest handover: charge the earlier custodian directly.
            index = _periodIndexAt(s.id, observedAt);
            CustodyPeriod storage period = _custody[s.id][index];
            custodian = period.custodian;
            fresh = breaches & ~uint256(period.breachFlags);
            if (excursionSeconds != 0) {
                period.excursionSeconds = SafeCast.toUint32(period.excursionSeconds + excursionSeconds);
            }
            if (fresh != 0) period.breachFlags |= uint16(fresh);
        }
        for (uint256 reason = 1; fresh != 0; ++reason) {
            uint256 reasonBit = 1 << reason;
            if (fresh & reasonBit == 0) continue;
            fresh &= ~reasonBit;
            // index < MAX_CUSTODY_PERIODS, sequence and observedAt were read as 4 and 5 bytes: casts are exact.
            emit BreachRecorded(
                s.id,
                custodian,
                BreachReason(reason),
                uint32(index),
                deviceId,
                uint32(sequence),
                uint40(observedAt)
            );
        }
    }

    function _skip(Batch memory b, uint64 deviceId, uint256 sequence, uint256 count, uint256 reason) private {
        b.skipped += count;
        // sequence was read as 4 bytes, count as 2: casts are exact.
        emit ReadingSkipped(deviceId, uint32(sequence), uint16(count), SkipReason(reason));
    }

    // ---------------------------------------------------------------- caches

    /// @dev Makes `deviceId` the cached device: writes back the previous one, reads key, track and replay
    /// window, and decides whether all its items are skipped (unknown, revoked, unbound, inactive shipment).
    function _selectDevice(Batch memory b, uint64 deviceId) private {
        DeviceCache memory d = b.device;
        // An empty cache has id 0, and 0 is never a registered device: look it up so it is skipped as unknown.
        if (d.id == deviceId && deviceId != 0) return;
        _flushDevice(d);
        d.id = deviceId;
        (d.keyType, d.intervalSeconds, d.signer, d.qx, d.qy, d.skip) = _deviceKey(deviceId);
        if (d.skip != NO_SKIP) return;
        IReadingsInbox.DeviceTrack storage t = _tracks[deviceId];
        d.shipmentId = t.shipmentId;
        d.highestSequence = t.highestSequence;
        d.state.lastObservedAt = t.lastObservedAt;
        d.state.excursionStartedAt = t.excursionStartedAt;
        d.state.freezeStartedAt = t.freezeStartedAt;
        d.bitmap = _replayBitmaps[deviceId];
        if (d.shipmentId == 0) {
            d.skip = uint256(SkipReason.UnboundDevice);
            return;
        }
        _selectShipment(b, d.shipmentId);
        if (!b.shipment.active) d.skip = uint256(SkipReason.ShipmentNotActive);
    }

    /// @dev The registry's answer for a device, and the skip reason it implies (NO_SKIP if usable).
    function _deviceKey(
        uint64 deviceId
    )
        private
        view
        returns (
            IDeviceRegistry.KeyType keyType,
            uint256 intervalSeconds,
            address signer,
            bytes32 qx,
            bytes32 qy,
            uint256 skip
        )
    {
        IDeviceRegistry.VerificationKey memory key = DEVICE_REGISTRY.verificationKey(deviceId);
        skip = NO_SKIP;
        if (key.keyType == IDeviceRegistry.KeyType.None) skip = uint256(SkipReason.UnknownDevice);
        else if (key.revokedAtBlock != 0 && block.number > key.revokedAtBlock) {
            skip = uint256(SkipReason.RevokedDevice);
        }
        return (key.keyType, key.intervalSeconds, key.signer, key.qx, key.qy, skip);
    }

    function _selectShipment(Batch memory b, uint64 shipmentId) private {
        ShipmentCache memory s = b.shipment;
        if (s.id == shipmentId) return;
        _flushShipment(s);
        s.id = shipmentId;
        Shipment storage sh = _shipments[shipmentId];
        s.active = sh.status == ShipmentStatus.InTransit || sh.status == ShipmentStatus.Delivered;
        if (!s.active) return;
        s.startedAt = sh.startedAt;
        s.deliveredAt = sh.deliveredAt;
        _copyProfile(b.profile, _profiles[sh.profileId]);
        TemperatureRules.prepare(s.rules, b.profile, _mktLimitFactors[sh.profileId], sh.startedAt);

        Condition storage c = _conditions[shipmentId];
        TemperatureRules.ShipmentState memory st = s.state;
        st.readingCount = c.readingCount;
        st.minCentiC = c.minCentiC;
        st.maxCentiC = c.maxCentiC;
        st.lastObservedAt = c.lastObservedAt;
        st.cumulativeExcursionSeconds = c.cumulativeExcursionSeconds;
        st.currentExcursionSeconds = c.currentExcursionSeconds;
        st.statusFlags = c.statusFlags;
        st.breachFlags = c.breachFlags;
        st.firstBreach = uint256(c.firstBreach);
        st.mktWeightedSum = c.mktWeightedSum;
        st.mktSeconds = c.mktSeconds;

        CustodyPeriod[] storage periods = _custody[shipmentId];
        uint256 last = periods.length - 1;
        CustodyPeriod storage p = periods[last];
        s.custodyIndex = last;
        s.custodian = p.custodian;
        s.custodySince = p.since;
        s.custodyExcursionSeconds = p.excursionSeconds;
        s.custodyBreachFlags = p.breachFlags;
    }

    /// @dev Copies a stored profile into the batch's scratch profile (no allocation per shipment).
    function _copyProfile(TemperatureProfile memory p, TemperatureProfile storage src) private view {
        p.minCentiC = src.minCentiC;
        p.maxCentiC = src.maxCentiC;
        p.absoluteMinCentiC = src.absoluteMinCentiC;
        p.absoluteMaxCentiC = src.absoluteMaxCentiC;
        p.freezeCentiC = src.freezeCentiC;
        p.maxFreezeSeconds = src.maxFreezeSeconds;
        p.maxSingleExcursionSeconds = src.maxSingleExcursionSeconds;
        p.maxCumulativeExcursionSeconds = src.maxCumulativeExcursionSeconds;
        p.adaptationSeconds = src.adaptationSeconds;
        p.maxGapIntervals = src.maxGapIntervals;
        p.faultFlagMask = src.faultFlagMask;
        p.mktLimitCentiC = src.mktLimitCentiC;
        p.mktMinCoverageSeconds = src.mktMinCoverageSeconds;
        p.mktEnabled = src.mktEnabled;
    }

    function _flushDevice(DeviceCache memory d) private {
        if (!d.dirty) return;
        IReadingsInbox.DeviceTrack storage t = _tracks[d.id];
        // Sequences were read as 4 bytes and times as 5: the casts are exact.
        t.highestSequence = uint32(d.highestSequence);
        t.lastObservedAt = uint40(d.state.lastObservedAt);
        t.excursionStartedAt = uint40(d.state.excursionStartedAt);
        t.freezeStartedAt = uint40(d.state.freezeStartedAt);
        _replayBitmaps[d.id] = d.bitmap;
        d.dirty = false;
    }

    function _flushShipment(ShipmentCache memory s) private {
        if (!s.dirty) return;
        TemperatureRules.ShipmentState memory st = s.state;
        Condition storage c = _conditions[s.id];
        c.readingCount = SafeCast.toUint32(st.readingCount);
        // Temperatures are int16 and times uint40 by construction: those casts are exact.
        c.minCentiC = int16(st.minCentiC);
        c.maxCentiC = int16(st.maxCentiC);
        c.lastObservedAt = uint40(st.lastObservedAt);
        c.cumulativeExcursionSeconds = SafeCast.toUint32(st.cumulativeExcursionSeconds);
        c.currentExcursionSeconds = SafeCast.toUint32(st.currentExcursionSeconds);
        c.statusFlags = uint8(st.statusFlags);
        c.breachFlags = uint16(st.breachFlags);
        c.firstBreach = BreachReason(st.firstBreach);
        c.mktWeightedSum = SafeCast.toUint128(st.mktWeightedSum);
        c.mktSeconds = SafeCast.toUint64(st.mktSeconds);
        CustodyPeriod storage p = _custody[s.id][s.custodyIndex];
        p.excursionSeconds = SafeCast.toUint32(s.custodyExcursionSeconds);
        p.breachFlags = uint16(s.custodyBreachFlags);
        s.dirty = false;
    }

    // ---------------------------------------------------------------- signatures

    /// @dev Verifies a device signature over `digest`: EIP-2098 compact for secp256k1 (`a` = r, `b` = vs),
    /// r || s for P-256 (`a` = r, `b` = s). High-s is refused on both curves.
    function _verify(Batch memory b, bytes32 digest, bytes32 a, bytes32 c) private view returns (bool) {
        DeviceCache memory d = b.device;
        if (d.keyType == IDeviceRegistry.KeyType.Secp256k1) {
            (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, a, c);
            return err == ECDSA.RecoverError.NoError && recovered == d.signer;
        }
        return _verifyP256(b, digest, a, c, d.qx, d.qy);
    }

    /// @dev P-256 through the precompile at 0x100 (6,900 gas on L1, EIP-7951), hand-written to skip the
    /// on-curve check OpenZeppelin repeats per call (the registry checked the key once: ~250 gas saved per
    /// reading). Where the precompile is missing (probed once per batch) the {P256_FALLBACK} verifies.
    function _verifyP256(
        Batch memory b,
        bytes32 digest,
        bytes32 r,
        bytes32 s,
        bytes32 qx,
        bytes32 qy
    ) private view returns (bool) {
        if (uint256(r) == 0 || uint256(r) >= P256_N || uint256(s) == 0 || uint256(s) > P256_HALF_N) return false;
        if (b.p256Support != P256_ABSENT) {
            if (_p256Precompile(digest, r, s, qx, qy)) {
                b.p256Support = P256_NATIVE;
                return true;
            }
            if (b.p256Support == P256_NATIVE) return false;
            // Precompiles have no code: probe with a known-valid signature (Wycheproof, as OpenZeppelin does).
            if (
                _p256Precompile(
                    0xbb5a52f42f9c9261ed4361f59422a1e30036e7c32b270c8807a419feca605023,
                    bytes32(uint256(5)),
                    bytes32(uint256(1)),
                    0xa71af64de5126a4a4e02b7922d66ce9415ce88a4c9d25514d91082c8725ac957,
                    0x5d47723c8fbe580bb369fec9c2665d8e30a435b9932645482e7c9f11e872296b
                )
            ) {
                b.p256Support = P256_NATIVE;
                return false;
            }
            b.p256Support = P256_ABSENT;
        }
        return P256_FALLBACK.verify(digest, r, s, qx, qy);
    }

    function _p256Precompile(
        bytes32 h,
        bytes32 r,
        bytes32 s,
        bytes32 qx,
        bytes32 qy
    ) private view returns (bool valid) {
        assembly ("memory-safe") {
            // Free memory used as scratch without moving the pointer: nothing is allocated per reading.
            let ptr := mload(0x40)
            mstore(ptr, h)
            mstore(add(ptr, 0x20), r)
            mstore(add(ptr, 0x40), s)
            mstore(add(ptr, 0x60), qx)
            mstore(add(ptr, 0x80), qy)
            mstore(0x00, 0)
            valid := and(staticcall(gas(), 0x100, ptr, 0xa0, 0x00, 0x20), eq(mload(0x00), 1))
        }
    }

    /// @dev EIP-712 digest of a Reading, hashed in scratch memory (no allocation: abi.encode per reading would
    /// grow memory, and its quadratic cost, with every reading of the batch).
    function _readingDigest(
        bytes32 domainSeparator,
        uint256 deviceId,
        uint256 sequence,
        uint256 observedAt,
        int256 temp,
        uint256 flags
    ) private pure returns (bytes32 digest) {
        bytes32 typehash = READING_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), deviceId)
            mstore(add(ptr, 0x40), sequence)
            mstore(add(ptr, 0x60), observedAt)
            mstore(add(ptr, 0x80), temp)
            mstore(add(ptr, 0xa0), flags)
            let structHash := keccak256(ptr, 0xc0)
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), domainSeparator)
            mstore(add(ptr, 0x40), structHash)
            digest := keccak256(add(ptr, 0x1e), 0x42)
        }
    }

    /// @dev EIP-712 digest of a ReadingWindow, hashed in scratch memory.
    function _windowDigest(
        bytes32 domainSeparator,
        uint256 deviceId,
        uint256 firstSequence,
        uint256 firstObservedAt,
        uint256 interval,
        bytes calldata samples
    ) private pure returns (bytes32 digest) {
        bytes32 typehash = READING_WINDOW_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, samples.offset, samples.length)
            let samplesHash := keccak256(ptr, samples.length)
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), deviceId)
            mstore(add(ptr, 0x40), firstSequence)
            mstore(add(ptr, 0x60), firstObservedAt)
            mstore(add(ptr, 0x80), interval)
            mstore(add(ptr, 0xa0), samplesHash)
            let structHash := keccak256(ptr, 0xc0)
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), domainSeparator)
            mstore(add(ptr, 0x40), structHash)
            digest := keccak256(add(ptr, 0x1e), 0x42)
        }
    }

    // ---------------------------------------------------------------- calldata

    /// @dev Big-endian unsigned integer of `size` bytes (1..32) at `at`. Bounds are checked by the callers.
    function _read(bytes calldata batch, uint256 at, uint256 size) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, mul(size, 8)), calldataload(add(batch.offset, at)))
        }
    }

    function _word(bytes calldata batch, uint256 at) private pure returns (bytes32 v) {
        assembly ("memory-safe") {
            v := calldataload(add(batch.offset, at))
        }
    }

    function _signExtend16(uint256 raw) private pure returns (int256 v) {
        assembly ("memory-safe") {
            v := signextend(1, raw)
        }
    }
}
