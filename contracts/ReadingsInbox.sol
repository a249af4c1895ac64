// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IP256Verifier} from "./interfaces/IP256Verifier.sol";
import {IReadingsInbox} from "./interfaces/IReadingsInbox.sol";
import {MktLib} from "./libraries/MktLib.sol";
import {ShipmentBook} from "./libraries/ShipmentBook.sol";
import {TemperatureRules} from "./libraries/TemperatureRules.sol";
import {ShipmentLedger} from "./ShipmentLedger.sol";

/// @title ReadingsInbox
/// @notice Verifies batches of device-signed readings and applies each to its shipment's rules.
/// @dev The gas-critical path. State of the device and shipment being processed is cached in memory and
/// written back once when the batch moves to another device or shipment (a run of readings of one device
/// costs two storage writes in all, not two per reading), and no memory is allocated per reading. Calldata is
/// decoded with `calldataload` from the packed format of {IReadingsInbox}; hashing uses scratch memory.
abstract contract ReadingsInbox is IReadingsInbox, ShipmentLedger {
    /// @notice EIP-712 type of a single reading; `previousObservedAt` names the device's reading before it.
    bytes32 public constant READING_TYPEHASH = keccak256(
        abi.encodePacked(
            "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags,",
            "uint40 previousObservedAt)"
        )
    );
    /// @notice EIP-712 type of a device window; `samples` is hashed as bytes (keccak256 of the packed samples),
    /// `previousObservedAt` names the device's reading before the first sample.
    bytes32 public constant READING_WINDOW_TYPEHASH = keccak256(
        abi.encodePacked(
            "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,",
            "uint32 intervalSeconds,bytes samples,uint40 previousObservedAt)"
        )
    );
    /// @notice Version byte that starts every batch.
    uint8 public constant BATCH_VERSION = 2;
    /// @notice Most readings in one device window.
    uint256 public constant MAX_WINDOW_READINGS = 256;

    uint256 private constant KIND_READINGS = 1;
    uint256 private constant KIND_WINDOW = 2;
    uint256 private constant READINGS_HEADER_BYTES = 11; // kind:1 deviceId:8 count:2
    // sequence:4 observedAt:5 temp:2 flags:1 previousObservedAt:5 signature:64
    uint256 private constant READING_BYTES = 81;
    // kind:1 deviceId:8 firstSeq:4 firstAt:5 interval:4 count:2 previousObservedAt:5
    uint256 private constant WINDOW_HEADER_BYTES = 29;
    uint256 private constant SAMPLE_BYTES = 3; // temp:2 flags:1
    uint256 private constant SIGNATURE_BYTES = 64;
    uint256 private constant RECORD_BYTES = 12; // a reading in ReadingsRecorded: the first 12 bytes of its item
    uint8 private constant NO_SKIP = type(uint8).max;
    /// @dev Breaches of a continuous run, which may span custody periods.
    uint256 private constant RUN_BREACHES =
        (1 << uint256(BreachReason.SingleExcursion)) | (1 << uint256(BreachReason.Freeze));
    /// @dev Both bounds of an empty quiet range: above every int16 temperature (see {_selectShipment}).
    int256 private constant EMPTY_RANGE = 65_535;

    /// @dev secp256r1 group order and half of it (low-s bound).
    uint256 private constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
    uint256 private constant P256_HALF_N = 0x7FFFFFFF800000007FFFFFFFFFFFFFFFDE737D56D38BCF4279DCE5617E3192A8;

    /// @notice Verifier used for P-256 signatures where the precompile at 0x100 is missing.
    IP256Verifier public immutable P256_FALLBACK;
    /// @notice Whether the P256VERIFY precompile (0x100, EIP-7951 / RIP-7212) answered at deployment. If not,
    /// every P-256 signature goes to {P256_FALLBACK} (~250,000 gas instead of 6,900).
    bool public immutable P256_PRECOMPILE;

    mapping(uint64 shipmentId => Condition) private _conditions;
    mapping(uint64 shipmentId => mapping(uint64 deviceId => DeviceEvidence)) private _evidence;
    uint32 internal _maxFutureSkewSeconds;

    /// @dev The device under way, in full words (no masking per access). Written back once per run.
    /// Fixed offsets, as for {Batch}.
    struct DeviceCache {
        uint64 id; // 0x000
        uint256 skip;
        IDeviceRegistry.KeyType keyType; // 0x040
        uint256 intervalSeconds; // 0x060
        address signer; // 0x080
        bytes32 qx; // 0x0a0
        bytes32 qy; // 0x0c0
        uint64 shipmentId;
        uint256 lastSequence; // 0x100
        uint256 breachPeriod; // 0x120 custody period of breachFlags
        TemperatureRules.DeviceState state; // 0x140
        bool dirty; // 0x160
        uint256 keyValidFrom; // 0x180 the current key verifies readings observed from here on
        uint256 revokedFrom; // 0x1a0 readings observed from here on are refused (max: not revoked)
        uint256 breachFlags; // 0x1c0 breach kinds announced for this device in period breachPeriod
    }

    /// @dev The shipment under way: rules, condition and current custody period, in full words.
    /// Fixed offsets, as for {Batch}.
    struct ShipmentCache {
        uint64 id;
        bool active;
        uint256 startedAt; // 0x040
        uint256 deliveredAt; // 0x060 delivery or cancellation: readings observed after it are refused
        TemperatureRules.Rules rules; // 0x080
        TemperatureRules.ShipmentState state; // 0x0a0
        address custodian;
        uint256 custodySince; // 0x0e0
        uint256 custodyIndex;
        uint256 custodyExcursionSeconds; // 0x120
        uint256 custodyBreachFlags; // 0x140
        bool dirty; // 0x160
        int256 quietLo; // 0x180 readings in [quietLo, quietHi] are quiet (see {_quietSamples})
        int256 quietHi; // 0x1a0
        int256 outerLo; // 0x1c0 quiet but for the range: [outerLo, outerHi] (see {_quietSamples})
        int256 outerHi; // 0x1e0
        uint256 heldFrom; // 0x200 readings observed from here on wait for a pending custody offer (max: none)
    }

    /// @dev Field order is part of the fast paths' contract: they read these words at fixed offsets (noted).
    struct Batch {
        bytes32 domainSeparator; // 0x00
        uint256 latestObservedAt; // 0x20
        uint256 p256Native; // 0x40 1 if P256VERIFY answered at deployment (see P256_PRECOMPILE)
        uint256 mktTable; // 0x60
        uint256 accepted;
        uint256 skipped;
        DeviceCache device; // 0xc0
        ShipmentCache shipment; // 0xe0
    }

    constructor(IP256Verifier p256Fallback) {
        P256_FALLBACK = p256Fallback;
        // Precompiles have no code: probe with a known-valid signature (Wycheproof, as OpenZeppelin does).
        P256_PRECOMPILE = _p256Precompile(
            0xbb5a52f42f9c9261ed4361f59422a1e30036e7c32b270c8807a419feca605023,
            bytes32(uint256(5)),
            bytes32(uint256(1)),
            0xa71af64de5126a4a4e02b7922d66ce9415ce88a4c9d25514d91082c8725ac957,
            0x5d47723c8fbe580bb369fec9c2665d8e30a435b9932645482e7c9f11e872296b
        );
    }

    /// @inheritdoc IReadingsInbox
    function submitReadings(bytes calldata batch) external whenNotPaused returns (uint256 accepted, uint256 skipped) {
        if (batch.length == 0 || uint8(batch[0]) != BATCH_VERSION) revert BatchMalformed(0);
        Batch memory b;
        b.domainSeparator = _domainSeparatorV4();
        if (P256_PRECOMPILE) b.p256Native = 1;
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
    function deviceEvidence(uint64 shipmentId, uint64 deviceId) external view returns (DeviceEvidence memory) {
        return _evidence[shipmentId][deviceId];
    }

    /// @inheritdoc IReadingsInbox
    function isRecorded(uint64 deviceId, uint40 observedAt) external view returns (bool) {
        DeviceTrack storage t = _tracks[deviceId];
        uint256 last = t.lastObservedAt;
        // last == 0: nothing recorded yet (time 0 is no reading either).
        return last != 0 && observedAt <= last && observedAt >= _shipments[t.shipmentId].startedAt;
    }

    function _latestObservedAt(uint64 shipmentId) internal view override returns (uint256) {
        return _conditions[shipmentId].lastObservedAt;
    }

    /// @inheritdoc IReadingsInbox
    function maxFutureSkewSeconds() external view returns (uint32) {
        return _maxFutureSkewSeconds;
    }

    // ---------------------------------------------------------------- items

    /// @dev READINGS item: a run of single readings of one device, each with its own signature. Quiet readings
    /// go through {_quietReadings}, any other through {_processReading}. Accepted readings are collected in a
    /// buffer and announced by one {ReadingsRecorded} for the item.
    function _processReadings(Batch memory b, bytes calldata batch, uint256 offset) private returns (uint256 end) {
        uint64 deviceId = uint64(_read(batch, offset + 1, 8));
        uint256 count = _read(batch, offset + 9, 2);
        uint256 start = offset + READINGS_HEADER_BYTES;
        end = start + count * READING_BYTES;
        if (count == 0 || end > batch.length) revert BatchMalformed(offset);
        _selectDevice(b, deviceId);
        uint256 reason = b.device.skip;
        if (reason != NO_SKIP) {
            for (uint256 q = start; q < end; q += READING_BYTES) _skip(b, deviceId, _read(batch, q, 4), 1, reason);
            return end;
        }
        // Event data: deviceId, offset of `readings`, its length, then RECORD_BYTES per accepted reading and one
        // word of zero padding. Taken from free memory for this item only and given back at its end.
        uint256 buffer = _allocate(0x80 + count * RECORD_BYTES);
        uint256 out = buffer + 0x60;
        uint256 p = start;
        // p advances by at least one reading per round: bounded by count.
        while (p < end) {
            (p, out) = _quietReadings(b, batch, p, end, out);
            if (p == end) break;
            out = _processReading(b, batch, p, deviceId, out);
            p += READING_BYTES;
        }
        if (out != buffer + 0x60) {
            b.accepted += (out - buffer - 0x60) / RECORD_BYTES;
            _emitReadingsRecorded(b.shipment.id, deviceId, buffer, out);
        }
        _release(buffer);
    }

    /// @dev One reading of a READINGS item the full way: signature, admission, every rule, liability. Appends
    /// it to the event buffer at `out` if accepted; returns the new end of the buffer.
    function _processReading(
        Batch memory b,
        bytes calldata batch,
        uint256 p,
        uint64 deviceId,
        uint256 out
    ) private returns (uint256) {
        // One word holds sequence (4 bytes), observedAt (5), temperature (2), flags (1) and previousObservedAt (5).
        uint256 head = uint256(_word(batch, p));
        uint256 sequence = head >> 224;
        uint256 observedAt = (head >> 184) & 0xffffffffff;
        uint256 flags = (head >> 160) & 0xff;
        int256 temp = _signExtend16((head >> 168) & 0xffff);
        uint256 previous = (head >> 120) & 0xffffffffff;
        uint256 reason;
        if (observedAt >= b.device.revokedFrom) {
            reason = uint256(SkipReason.RevokedDevice);
        } else {
            bytes32 digest = _readingDigest(b.domainSeparator, deviceId, sequence, observedAt, temp, flags, previous);
            if (!_verifyAt(b, digest, _word(batch, p + 17), _word(batch, p + 49), observedAt, observedAt)) {
                reason = uint256(SkipReason.BadSignature);
            } else {
                reason = _admit(b, previous, observedAt);
            }
        }
        if (reason != NO_SKIP) {
            _skip(b, deviceId, sequence, 1, reason);
            return out;
        }
        _apply(b, sequence, observedAt, temp, flags);
        b.device.lastSequence = sequence;
        assembly ("memory-safe") {
            // The first 12 bytes of the word are the record; the next record or the padding overwrites the rest.
            mstore(out, head)
        }
        return out + RECORD_BYTES;
    }

    /// @dev WINDOW item: consecutive readings of one device under one signature. Quiet samples go through
    /// {_quietSamples}, any other through {_apply}.
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
        uint256 previous = _read(batch, offset + 24, 5);
        _selectDevice(b, deviceId);

        uint256 reason = b.device.skip;
        if (
            reason == NO_SKIP &&
            (count == 0 ||
                count > MAX_WINDOW_READINGS ||
                interval != b.device.intervalSeconds ||
                firstSequence + count - 1 > type(uint32).max)
        ) reason = uint256(SkipReason.MalformedItem);
        uint256 from;
        uint256 until;
        if (reason == NO_SKIP) {
            // count >= 1 here; the last sample's time is what the revocation and the key's validity are held to.
            uint256 lastAt = firstObservedAt + (count - 1) * interval;
            bytes32 digest = _windowDigest(
                b.domainSeparator,
                deviceId,
                firstSequence,
                firstObservedAt,
                interval,
                batch[samplesStart:samplesEnd],
                previous
            );
            if (lastAt >= b.device.revokedFrom) reason = uint256(SkipReason.RevokedDevice);
            else if (
                !_verifyAt(b, digest, _word(batch, samplesEnd), _word(batch, samplesEnd + 32), firstObservedAt, lastAt)
            ) reason = uint256(SkipReason.BadSignature);
            else (reason, from, until) = _admitWindow(b, previous, firstObservedAt, interval, count);
        }
        if (reason != NO_SKIP) {
            _skip(b, deviceId, firstSequence, count, reason);
            return end;
        }
        if (from != 0) _skip(b, deviceId, firstSequence, from, uint256(SkipReason.OutsideShipmentWindow));
        if (until != count) {
            _skip(b, deviceId, firstSequence + until, count - until, uint256(SkipReason.OutsideShipmentWindow));
        }
        // count <= 256, sequences and times fit (checked above): nothing here overflows.
        unchecked {
            uint256 insideEnd = samplesStart + until * SAMPLE_BYTES;
            uint256 i = from;
            uint256 observedAt = firstObservedAt + from * interval;
            while (i < until) {
                uint256 quiet = _quietSamples(b, batch, samplesStart + i * SAMPLE_BYTES, insideEnd, observedAt);
                i += quiet;
                observedAt += quiet * interval;
                if (i == until) break;
                uint256 sample = _read(batch, samplesStart + i * SAMPLE_BYTES, SAMPLE_BYTES);
                _apply(b, firstSequence + i, observedAt, _signExtend16(sample >> 8), sample & 0xff);
                ++i;
                observedAt += interval;
            }
            b.accepted += until - from;
            b.device.lastSequence = firstSequence + until - 1;
            emit WindowRecorded(
                b.shipment.id,
                deviceId,
                uint32(firstSequence + from),
                uint40(firstObservedAt + from * interval),
                uint32(interval),
                batch[samplesStart + from * SAMPLE_BYTES:insideEnd]
            );
        }
    }

    /// @dev Checks the times of a window whose signature verified, and that it is the device's next (see {_link}).
    /// Samples [from, until) lie inside the shipment (from its start to its delivery or cancellation); the others
    /// are skipped, the inside ones recorded: a window may straddle either end.
    /// @return reason NO_SKIP, or the SkipReason to skip the whole window with
    /// @return from first sample inside the shipment
    /// @return until end (exclusive) of the samples inside the shipment
    function _admitWindow(
        Batch memory b,
        uint256 previous,
        uint256 firstObservedAt,
        uint256 interval,
        uint256 count
    ) private pure returns (uint256 reason, uint256 from, uint256 until) {
        (from, until) = _insideShipment(b.shipment, firstObservedAt, interval, count);
        // The future check applies to the window's last sample, against the block time.
        if (firstObservedAt + (count - 1) * interval > b.latestObservedAt) {
            reason = uint256(SkipReason.FutureTimestamp);
        } else if (from == until) {
            reason = uint256(SkipReason.OutsideShipmentWindow);
        } else if (firstObservedAt + (until - 1) * interval >= b.shipment.heldFrom) {
            reason = uint256(SkipReason.CustodyPending);
        } else {
            reason = _link(b, previous, firstObservedAt);
        }
    }

    /// @dev The samples of a window (first observed at `firstObservedAt`, `count` samples `interval` apart) that
    /// lie inside shipment `s`: indices [from, until), from its start to its delivery or cancellation (both
    /// included); from == until when none does.
    function _insideShipment(
        ShipmentCache memory s,
        uint256 firstObservedAt,
        uint256 interval,
        uint256 count
    ) private pure returns (uint256 from, uint256 until) {
        until = count;
        // interval > 0 (the registry refuses 0), times below 2^40, count <= 256: no overflow, no division by 0.
        unchecked {
            if (firstObservedAt < s.startedAt) from = (s.startedAt - firstObservedAt + interval - 1) / interval;
            uint256 endsAt = s.deliveredAt;
            if (endsAt != 0 && firstObservedAt + (count - 1) * interval > endsAt) {
                until = endsAt < firstObservedAt ? 0 : (endsAt - firstObservedAt) / interval + 1;
            }
        }
        if (from > until) from = until;
    }

    /// @dev Checks the time of a single reading whose signature verified, and that it is the device's next.
    /// @return reason NO_SKIP, or the SkipReason to skip the reading with
    function _admit(Batch memory b, uint256 previous, uint256 observedAt) private pure returns (uint256 reason) {
        if (observedAt > b.latestObservedAt) return uint256(SkipReason.FutureTimestamp);
        ShipmentCache memory s = b.shipment;
        if (observedAt < s.startedAt || (s.deliveredAt != 0 && observedAt > s.deliveredAt)) {
            return uint256(SkipReason.OutsideShipmentWindow);
        }
        if (observedAt >= s.heldFrom) return uint256(SkipReason.CustodyPending);
        return _link(b, previous, observedAt);
    }

    /// @dev Whether a reading (or a window's first sample) observed at `observedAt`, naming its predecessor
    /// `previous`, is the device's next in this shipment: it names the latest recorded reading, or none is recorded
    /// yet and its predecessor is before the start. This is what makes the verdict independent of the relay order:
    /// a device's readings are applied in the order it took them, and only once each.
    /// @return reason NO_SKIP; DuplicateSequence (at or before the latest: recorded already); SequenceGap (its
    /// predecessor is not recorded yet: retryable); StaleSequence (names a predecessor older than the latest)
    function _link(Batch memory b, uint256 previous, uint256 observedAt) private pure returns (uint256 reason) {
        uint256 last = b.device.state.lastObservedAt;
        if (observedAt <= last) return uint256(SkipReason.DuplicateSequence);
        if (last == 0 ? previous < b.shipment.startedAt : previous == last) return NO_SKIP;
        // With none recorded yet, a predecessor at or after the start is above last (0) too.
        return previous > last ? uint256(SkipReason.SequenceGap) : uint256(SkipReason.StaleSequence);
    }

    /// @dev Runs the rules for one accepted reading and charges what it raises to the custodian of its time.
    function _apply(Batch memory b, uint256 sequence, uint256 observedAt, int256 temp, uint256 flags) private {
        uint256 table = b.mktTable;
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
        d.dirty = true;
        if (breaches == 0 && excursionSeconds == 0) return;
        uint256 fresh = _charge(s, d, sequence, observedAt, breaches, excursionSeconds);
        // A run that crossed its limit here may have begun under an earlier custodian: name each one's share.
        if (fresh & RUN_BREACHES != 0) {
            uint256 runEnd = observedAt + d.intervalSeconds;
            if (fresh & (1 << uint256(BreachReason.SingleExcursion)) != 0) {
                _shareRun(s, d.id, BreachReason.SingleExcursion, d.state.excursionStartedAt, runEnd, observedAt);
            }
            if (fresh & (1 << uint256(BreachReason.Freeze)) != 0) {
                _shareRun(s, d.id, BreachReason.Freeze, d.state.freezeStartedAt, runEnd, observedAt);
            }
        }
    }

    /// @dev Names each custodian's share of a run [runStart, runEnd) that crossed its limit at `observedAt`
    /// ({BreachRunShared}, see ShipmentBook.shareRun). Rare: a breach new to the device and period.
    function _shareRun(
        ShipmentCache memory s,
        uint64 deviceId,
        BreachReason reason,
        uint256 runStart,
        uint256 runEnd,
        uint256 observedAt
    ) private {
        ShipmentBook.shareRun(_custody[s.id], s.id, deviceId, reason, runStart, runEnd, observedAt);
    }

    /// @dev Charges excursion seconds and breaches to the custody period containing `observedAt`; emits one
    /// {BreachRecorded} per kind of breach new to the device in that period. A device's readings come in its own
    /// order, so its period index never goes back: one period's flags per device suffice.
    function _charge(
        ShipmentCache memory s,
        DeviceCache memory d,
        uint256 sequence,
        uint256 observedAt,
        uint256 breaches,
        uint256 excursionSeconds
    ) private returns (uint256 fresh) {
        uint256 index;
        address custodian;
        if (observedAt >= s.custodySince) {
            index = s.custodyIndex;
            custodian = s.custodian;
            // Bounded by the shipment's cumulative excursion (see TemperatureRules.apply_).
            unchecked {
                s.custodyExcursionSeconds += excursionSeconds;
            }
            s.custodyBreachFlags |= breaches;
        } else {
            // A late reading from before the latest handover: charge the earlier custodian directly.
            (index, custodian) = ShipmentBook.chargeEarlierPeriod(
                _custody[s.id],
                observedAt,
                excursionSeconds,
                breaches
            );
        }
        if (index != d.breachPeriod) (d.breachPeriod, d.breachFlags) = (index, 0);
        fresh = breaches & ~d.breachFlags;
        d.breachFlags |= fresh;
        uint256 left = fresh;
        for (uint256 reason = 1; left != 0; ++reason) {
            uint256 reasonBit = 1 << reason;
            if (left & reasonBit == 0) continue;
            left &= ~reasonBit;
            // index < MAX_CUSTODY_PERIODS, sequence and observedAt were read as 4 and 5 bytes: casts are exact.
            emit BreachRecorded(
                s.id,
                custodian,
                BreachReason(reason),
                uint32(index),
                d.id,
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
        IDeviceRegistry.VerificationKey memory key = DEVICE_REGISTRY.verificationKey(deviceId);
        (d.keyType, d.intervalSeconds, d.signer, d.qx, d.qy) = (
            key.keyType,
            key.intervalSeconds,
            key.signer,
            key.qx,
            key.qy
        );
        d.keyValidFrom = key.keyValidFrom;
        d.revokedFrom = key.revokedFrom == 0 ? type(uint256).max : key.revokedFrom;
        // Revocation is judged per reading, by its observation time (readings observed before it still count).
        d.skip = key.keyType == IDeviceRegistry.KeyType.None ? uint256(SkipReason.UnknownDevice) : NO_SKIP;
        if (d.skip != NO_SKIP) return;
        IReadingsInbox.DeviceTrack storage t = _tracks[deviceId];
        d.shipmentId = t.shipmentId;
        d.lastSequence = t.lastSequence;
        d.state.lastObservedAt = t.lastObservedAt;
        d.state.excursionStartedAt = t.excursionStartedAt;
        d.state.freezeStartedAt = t.freezeStartedAt;
        if (d.shipmentId == 0) {
            d.skip = uint256(SkipReason.UnboundDevice);
            return;
        }
        DeviceEvidence storage e = _evidence[d.shipmentId][deviceId];
        d.state.mktWeightedSum = e.mktWeightedSum;
        d.state.mktSeconds = e.mktSeconds;
        d.state.cumulativeExcursionSeconds = e.cumulativeExcursionSeconds;
        d.breachPeriod = e.breachPeriod;
        d.breachFlags = e.breachFlags;
        _selectShipment(b, d.shipmentId);
        if (!b.shipment.active)
            d.skip = uint256(SkipReason.ShipmentNotActive);
            // Loaded before any item takes memory for its events: it stays allocated for the whole batch.
        else if (b.mktTable == 0) b.mktTable = MktLib.loadIntoMemory(MKT_TABLE);
    }

    function _selectShipment(Batch memory b, uint64 shipmentId) private {
        ShipmentCache memory s = b.shipment;
        if (s.id == shipmentId) return;
        _flushShipment(s);
        s.id = shipmentId;
        ShipmentBook.Shipment storage sh = _shipments[shipmentId];
        ShipmentStatus status = sh.status;
        // A pending custody offer fixed the next boundary: readings at or after it wait until it is settled.
        CustodyOffer storage offer = _offers[shipmentId];
        s.heldFrom = offer.to != address(0) && block.timestamp <= offer.deadline ? offer.handoverAt : type(uint256).max;
        // A shipment cancelled after it started still records the readings observed before the cancellation.
        bool cancelled = status == ShipmentStatus.Cancelled && sh.startedAt != 0;
        // A created shipment whose first handover is pending will start at its boundary: readings from then on
        // wait (CustodyPending), earlier ones are before the start.
        bool starting = status == ShipmentStatus.Created && s.heldFrom != type(uint256).max;
        s.active = status == ShipmentStatus.InTransit || status == ShipmentStatus.Delivered || cancelled || starting;
        if (!s.active) return;
        s.startedAt = starting ? s.heldFrom : sh.startedAt;
        s.deliveredAt = cancelled ? sh.decidedAt : sh.deliveredAt;
        TemperatureRules.prepare(s.rules, _profiles[sh.profileId], _mktLimitFactors[sh.profileId], s.startedAt);
        // Quiet: in range, above the freeze threshold, within the absolute limits and the MKT table.
        TemperatureRules.Rules memory r = s.rules;
        // Outer: the same but for the range (out of range, a reading only adds excursion time).
        s.outerLo = _max(r.absoluteMinCentiC, _max(r.freezeCentiC + 1, MktLib.TABLE_MIN_CENTI_C));
        s.outerHi = _min(r.absoluteMaxCentiC, MktLib.TABLE_MAX_CENTI_C);
        s.quietLo = _max(s.outerLo, r.minCentiC);
        s.quietHi = _min(s.outerHi, r.maxCentiC);
        // The loops test `lo <= temp <= hi` as one unsigned `temp - lo <= hi - lo`: an empty range (a cryogenic
        // profile below the MKT table, say) must not become a huge width. Empty is a bound no int16 reaches.
        if (s.outerHi < s.outerLo) (s.outerLo, s.outerHi) = (EMPTY_RANGE, EMPTY_RANGE);
        if (s.quietHi < s.quietLo) (s.quietLo, s.quietHi) = (EMPTY_RANGE, EMPTY_RANGE);

        Condition storage c = _conditions[shipmentId];
        TemperatureRules.ShipmentState memory st = s.state;
        st.readingCount = c.readingCount;
        st.minCentiC = c.minCentiC;
        st.maxCentiC = c.maxCentiC;
        st.lastObservedAt = c.lastObservedAt;
        st.cumulativeExcursionSeconds = c.cumulativeExcursionSeconds;
        st.longestExcursionSeconds = c.longestExcursionSeconds;
        st.statusFlags = c.statusFlags;
        st.breachFlags = c.breachFlags;
        st.firstBreach = uint256(c.firstBreach);
        st.excursionDevices = c.excursionDevices;
        st.freezeDevices = c.freezeDevices;
        st.firstBreachAt = c.firstBreachAt;
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

    function _flushDevice(DeviceCache memory d) private {
        if (!d.dirty) return;
        IReadingsInbox.DeviceTrack storage t = _tracks[d.id];
        // Sequences were read as 4 bytes and times as 5, periods are fewer than MAX_CUSTODY_PERIODS and breach
        // flags fit 16 bits: the casts are exact.
        t.lastSequence = uint32(d.lastSequence);
        t.lastObservedAt = uint40(d.state.lastObservedAt);
        t.excursionStartedAt = uint40(d.state.excursionStartedAt);
        t.freezeStartedAt = uint40(d.state.freezeStartedAt);
        _evidence[d.shipmentId][d.id] = DeviceEvidence({
            mktWeightedSum: SafeCast.toUint128(d.state.mktWeightedSum),
            mktSeconds: SafeCast.toUint64(d.state.mktSeconds),
            cumulativeExcursionSeconds: SafeCast.toUint32(d.state.cumulativeExcursionSeconds),
            breachPeriod: uint16(d.breachPeriod),
            breachFlags: uint16(d.breachFlags)
        });
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
        c.longestExcursionSeconds = SafeCast.toUint32(st.longestExcursionSeconds);
        c.statusFlags = uint8(TemperatureRules.statusOf(s.rules, st));
        c.breachFlags = uint16(st.breachFlags);
        c.firstBreach = BreachReason(st.firstBreach);
        // At most MAX_DEVICES_PER_SHIPMENT devices are counted; times fit 40 bits.
        c.excursionDevices = uint8(st.excursionDevices);
        c.freezeDevices = uint8(st.freezeDevices);
        c.firstBreachAt = uint40(st.firstBreachAt);
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
    /// Keys are bound to time: readings observed from `from` to `until` (one reading, or a window's first and last
    /// sample) verify under the one key valid over that whole time, never a key set later.
    function _verifyAt(
        Batch memory b,
        bytes32 digest,
        bytes32 a,
        bytes32 c,
        uint256 from,
        uint256 until
    ) private view returns (bool) {
        DeviceCache memory d = b.device;
        if (from >= d.keyValidFrom) return _verifyWith(d.keyType, d.signer, d.qx, d.qy, digest, a, c);
        // Observed before the current key: the registry's key of that time, if it covers the whole item. Rare
        // (an upload that crosses a rotation): one registry call.
        IDeviceRegistry.VerificationKey memory k = DEVICE_REGISTRY.verificationKeyAt(d.id, uint40(from));
        if (k.keyValidUntil != 0 && until >= k.keyValidUntil) return false;
        return _verifyWith(k.keyType, k.signer, k.qx, k.qy, digest, a, c);
    }

    function _verifyWith(
        IDeviceRegistry.KeyType keyType,
        address signer,
        bytes32 qx,
        bytes32 qy,
        bytes32 digest,
        bytes32 a,
        bytes32 c
    ) private view returns (bool) {
        if (keyType == IDeviceRegistry.KeyType.Secp256k1) {
            (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, a, c);
            return err == ECDSA.RecoverError.NoError && recovered == signer;
        }
        return _verifyP256(digest, a, c, qx, qy);
    }

    /// @dev P-256 through the precompile at 0x100 (6,900 gas on L1, EIP-7951), hand-written to skip the
    /// on-curve check OpenZeppelin repeats per call (the registry checked the key once: ~250 gas saved per
    /// reading). Where the precompile was missing at deployment the {P256_FALLBACK} verifies (OpenZeppelin's
    /// P256.verify, which uses the precompile if the chain gains it later).
    function _verifyP256(bytes32 digest, bytes32 r, bytes32 s, bytes32 qx, bytes32 qy) private view returns (bool) {
        if (uint256(r) == 0 || uint256(r) >= P256_N || uint256(s) == 0 || uint256(s) > P256_HALF_N) return false;
        if (P256_PRECOMPILE) return _p256Precompile(digest, r, s, qx, qy);
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
            // The call first, then its output: Yul evaluates arguments right to left, so in
            // and(staticcall(..), eq(mload(0), 1)) the output would be read before the call.
            let answered := staticcall(gas(), 0x100, ptr, 0xa0, 0x00, 0x20)
            valid := and(answered, eq(mload(0x00), 1))
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
        uint256 flags,
        uint256 previous
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
            mstore(add(ptr, 0xc0), previous)
            let structHash := keccak256(ptr, 0xe0)
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
        bytes calldata samples,
        uint256 previous
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
            mstore(add(ptr, 0xc0), previous)
            let structHash := keccak256(ptr, 0xe0)
            mstore(ptr, 0x1901)
            mstore(add(ptr, 0x20), domainSeparator)
            mstore(add(ptr, 0x40), structHash)
            digest := keccak256(add(ptr, 0x1e), 0x42)
        }
    }

    // ---------------------------------------------------------------- fast paths

    // Most readings are quiet: in range, no flag, in order, MKT fine. For them the rules reduce to min/max and
    // the MKT sums, plus resets that are the same for all of them. The two loops below apply exactly that, with
    // every variable on the stack, and stop at the first reading that is not quiet; {TemperatureRules.apply_}
    // handles that one, and the loop resumes after it. Hand-written for gas: through apply_, a window reading
    // costs ~1,850 gas and a signed reading ~4,000 above its signature and calldata; here ~300 and ~600.
    // test/QuietPaths.t.sol holds both loops to apply_ reading by reading (fuzzed, every field of the state).

    /// @dev Applies the quiet samples of the current window from `from` (batch offset) on, the first observed at
    /// `observedAt`; returns how many it applied (0 when the state does not allow the fast path).
    // solhint-disable-next-line function-max-lines
    function _quietSamples(
        Batch memory b,
        bytes calldata batch,
        uint256 from,
        uint256 to,
        uint256 observedAt
    ) private pure returns (uint256 quiet) {
        (uint256 mktStep, uint256 mktExcess, uint256 mktUnjudged) = _mktForQuiet(b);
        uint256 gapLimit = _gapLimit(b);
        uint256 room = _excursionRoom(b, observedAt);
        uint256 excursion;
        int256 coldest;
        int256 warmest;
        assembly ("memory-safe") {
            /// The quiet samples of a window from `mload(ctx)` on, stopping before the first other one: no flag
            /// set, temperature within the quiet bounds (in range, above the freeze threshold, within the absolute
            /// limits and the MKT table) and the MKT not above its limit when judged. Such a sample changes only
            /// min/max and the MKT sums; the caller applies the rest, the same for all of them, once. The loop
            /// keeps its 14 variables on the stack: ~60 instructions per sample.
            /// ctx: p, end, lo << 8, (hi - lo) << 8, table, min, max, interval, interval x limit, the MKT excess
            /// (weighted sum - limit x seconds, two's complement), unjudged samples left; p, min, max and the
            /// excess are written back.
            /// [max(lo, min), min(hi, max)] as (start, width) in `temp << 8 | flags` space; an empty range as a
            /// start no sample reaches. A sample in it is quiet and changes neither min nor max: one test for all.
            function innerRange(lo, width, minSeen, maxSeen) -> start, span {
                start := lo
                if sgt(shl(8, minSeen), start) {
                    start := shl(8, minSeen)
                }
                let end := add(lo, width)
                if slt(shl(8, maxSeen), end) {
                    end := shl(8, maxSeen)
                }
                span := sub(end, start)
                if slt(end, start) {
                    start := shl(255, 1)
                    span := 0
                }
            }

            function loop(ctx) {
                let p := mload(ctx)
                let end := mload(add(ctx, 0x20))
                let table := mload(add(ctx, 0x80))
                let minSeen := mload(add(ctx, 0xa0))
                let maxSeen := mload(add(ctx, 0xc0))
                let interval := mload(add(ctx, 0xe0))
                let intervalLimit := mload(add(ctx, 0x100))
                let excess := mload(add(ctx, 0x120))
                let unjudged := mload(add(ctx, 0x140))
                let inner, innerWidth := innerRange(mload(add(ctx, 0x40)), mload(add(ctx, 0x60)), minSeen, maxSeen)
                for {} lt(p, end) {
                    p := add(p, 3)
                } {
                    // temp << 8 | flags, signed: quiet iff flags are 0 and lo <= temp <= hi.
                    let v := signextend(2, shr(232, calldataload(p)))
                    let temp := sar(8, v)
                    if or(and(v, 0xff), gt(sub(v, inner), innerWidth)) {
                        // Outside the inner range: a new extreme if quiet (min/max move before the MKT test; if
                        // that stops the loop, the full path applies the same min/max again, which changes nothing).
                        if or(and(v, 0xff), gt(sub(v, mload(add(ctx, 0x160))), mload(add(ctx, 0x180)))) {
                            break
                        }
                        // Out of range but otherwise quiet: an excursion of one interval, taken here if the
                        // previous sample was in range (a run of one) and it raises no breach not yet recorded
                        // (room: see {_excursionRoom}). Rare: its state lives in ctx, not on the stack.
                        if gt(sub(v, mload(add(ctx, 0x40))), mload(add(ctx, 0x60))) {
                            let left := mload(add(ctx, 0x1a0))
                            if or(eq(mload(add(ctx, 0x1c0)), sub(p, 3)), lt(left, interval)) {
                                break
                            }
                            mstore(add(ctx, 0x1a0), sub(left, interval))
                            mstore(add(ctx, 0x1c0), p)
                        }
                        if slt(temp, minSeen) {
                            minSeen := temp
                        }
                        if sgt(temp, maxSeen) {
                            maxSeen := temp
                        }
                        inner, innerWidth := innerRange(mload(add(ctx, 0x40)), mload(add(ctx, 0x60)), minSeen, maxSeen)
                    }
                    let newExcess := add(
                        excess,
                        sub(mul(interval, shr(192, mload(add(table, shl(3, div(add(temp, 8005), 10)))))), intervalLimit)
                    )
                    let judged := iszero(unjudged)
                    if and(judged, sgt(newExcess, 0)) {
                        break
                    }
                    unjudged := sub(unjudged, iszero(judged))
                    excess := newExcess
                }
                mstore(ctx, p)
                mstore(add(ctx, 0xa0), minSeen)
                mstore(add(ctx, 0xc0), maxSeen)
                mstore(add(ctx, 0x120), excess)
                // Never true (ctx is free memory, far above 0). A recursive function is never inlined: this keeps
                // the loop out of its large caller, whose variables the compiler moves to memory for stack room.
                if iszero(ctx) {
                    loop(ctx)
                }
            }

            let d := mload(add(b, 0xc0))
            let s := mload(add(b, 0xe0))
            let r := mload(add(s, 0x80))
            let c := mload(add(s, 0xa0))
            let t := mload(add(d, 0x140))
            let status := mload(add(c, 0xc0))
            let deviceLast := mload(t)
            let interval := mload(add(d, 0x60))
            let gapFrom := deviceLast
            if iszero(gapFrom) {
                gapFrom := mload(add(r, 0x180))
            }
            // Some temperature seen, the next sample in order, evaluated and within the gap limit: the following
            // ones are then one interval apart, in order, evaluated, never a gap.
            if and(
                and(and(status, 1), gt(observedAt, deviceLast)),
                and(iszero(lt(observedAt, mload(add(r, 0x1a0)))), iszero(gt(sub(observedAt, gapFrom), gapLimit)))
            ) {
                let ctx := mload(0x40)
                let p := add(batch.offset, from)
                let lo := mload(add(s, 0x180))
                mstore(ctx, p)
                mstore(add(ctx, 0x20), add(batch.offset, to))
                mstore(add(ctx, 0x40), shl(8, lo))
                mstore(add(ctx, 0x60), shl(8, sub(mload(add(s, 0x1a0)), lo)))
                mstore(add(ctx, 0x80), mload(add(b, 0x60)))
                mstore(add(ctx, 0xa0), mload(add(c, 0x20)))
                mstore(add(ctx, 0xc0), mload(add(c, 0x40)))
                mstore(add(ctx, 0xe0), interval)
                mstore(add(ctx, 0x100), mktStep)
                mstore(add(ctx, 0x120), mktExcess)
                mstore(add(ctx, 0x140), mktUnjudged)
                let outerLo := mload(add(s, 0x1c0))
                mstore(add(ctx, 0x160), shl(8, outerLo))
                mstore(add(ctx, 0x180), shl(8, sub(mload(add(s, 0x1e0)), outerLo)))
                mstore(add(ctx, 0x1a0), room)
                // The sample before the first one: in an excursion run if the device is (not a run of one).
                mstore(add(ctx, 0x1c0), mul(iszero(iszero(mload(add(t, 0x20)))), sub(p, 3)))
                loop(ctx)
                let stoppedAt := mload(ctx)
                quiet := div(sub(stoppedAt, p), 3)
                coldest := mload(add(ctx, 0xa0))
                warmest := mload(add(ctx, 0xc0))
                mktExcess := mload(add(ctx, 0x120))
                // An excursion sample the MKT test then stopped at is not applied: give its interval back.
                let left := add(mload(add(ctx, 0x1a0)), mul(eq(mload(add(ctx, 0x1c0)), stoppedAt), interval))
                // Excursion seconds added << 1 | whether the last sample applied is one (its run goes on).
                excursion := or(shl(1, sub(room, left)), eq(mload(add(ctx, 0x1c0)), sub(stoppedAt, 3)))
            }
        }
        // Samples are one interval apart: the last one applied is at observedAt + (quiet - 1) x interval.
        unchecked {
            if (quiet != 0) {
                _settleQuiet(
                    b,
                    quiet,
                    observedAt + (quiet - 1) * b.device.intervalSeconds,
                    coldest,
                    warmest,
                    mktExcess,
                    excursion
                );
            }
        }
    }

    /// @dev Applies the quiet readings of the current READINGS item from `p` (batch offset) on, appending them
    /// to the event buffer at `out`; returns where it stopped and the new end of the buffer (both unchanged when
    /// the state does not allow the fast path).
    // solhint-disable-next-line function-max-lines
    function _quietReadings(
        Batch memory b,
        bytes calldata batch,
        uint256 from,
        uint256 to,
        uint256 bufferEnd
    ) private view returns (uint256 stoppedAt, uint256 newBufferEnd) {
        (stoppedAt, newBufferEnd) = (from, bufferEnd);
        bytes32 readingTypehash = READING_TYPEHASH;
        (uint256 mktStep, uint256 mktExcess, uint256 mktUnjudged) = _mktForQuiet(b);
        uint256 gapLimit = _gapLimit(b);
        uint256 quiet;
        uint256 lastAt;
        int256 coldest;
        int256 warmest;
        assembly ("memory-safe") {
            /// The quiet signed readings of a READINGS item from `mload(ctx)` on, stopping before the first other
            /// one: a quiet sample (see {_quietSamples}) that is also the device's next reading (naming its latest
            /// as predecessor, within the gap limit, not after `hi` = min(latest allowed, delivery)) with a valid
            /// signature. The caller checked the device's state allows it (a reading recorded, evaluated; P-256
            /// precompile answering). Anything else ends the run, and the caller's full path handles that reading,
            /// with its skip reason or breaches. Accepted readings are appended to the event buffer.
            /// ctx (words): 0x00 p, 0x20 end, 0x40 out, 0x60 signer, 0x80 key type, 0xa0 last, 0xc0 gap limit,
            /// 0xe0 hi, 0x100 last sequence, 0x140 lo << 8, 0x160 (hi - lo) << 8, 0x180 table, 0x1a0 min,
            /// 0x1c0 max, 0x1e0 interval, 0x200 interval x limit, 0x220 MKT excess, 0x240 unjudged; then the Reading
            /// struct (typehash, deviceId, sequence, observedAt, temp, flags, previousObservedAt) at 0x260, the
            /// digest preimage (0x1901, domain, hash) at 0x340 and the precompile input at 0x3a0 (qx, qy at 0x400,
            /// 0x420). In/out: p, out, last, last sequence, min, max, excess, unjudged.
            function loop(ctx) {
                let p := mload(ctx)
                let end := mload(add(ctx, 0x20))
                let out := mload(add(ctx, 0x40))
                let last := mload(add(ctx, 0xa0))
                let lastSequence := mload(add(ctx, 0x100))
                let minSeen := mload(add(ctx, 0x1a0))
                let maxSeen := mload(add(ctx, 0x1c0))
                let excess := mload(add(ctx, 0x220))
                for {} lt(p, end) {
                    p := add(p, 81)
                } {
                    let head := calldataload(p)
                    let at := and(shr(184, head), 0xffffffffff)
                    let v := signextend(2, shr(160, head)) // temp << 8 | flags, signed
                    if or(and(v, 0xff), gt(sub(v, mload(add(ctx, 0x140))), mload(add(ctx, 0x160)))) {
                        break
                    }
                    // last < at <= last + gap limit, and at <= hi.
                    if or(iszero(lt(sub(sub(at, last), 1), mload(add(ctx, 0xc0)))), gt(at, mload(add(ctx, 0xe0)))) {
                        break
                    }
                    // The device's next reading names its latest one as predecessor (last > 0 here).
                    let previous := and(shr(120, head), 0xffffffffff)
                    if iszero(eq(previous, last)) {
                        break
                    }
                    let seq := shr(224, head)
                    let temp := sar(8, v)

                    mstore(add(ctx, 0x2a0), seq)
                    mstore(add(ctx, 0x2c0), at)
                    mstore(add(ctx, 0x2e0), temp)
                    mstore(add(ctx, 0x320), previous)
                    mstore(add(ctx, 0x380), keccak256(add(ctx, 0x260), 0xe0))
                    let digest := keccak256(add(ctx, 0x35e), 0x42)
                    switch mload(add(ctx, 0x80))
                    case 1 {
                        let vs := calldataload(add(p, 49))
                        let sigS := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
                        if gt(sigS, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) {
                            break
                        }
                        mstore(add(ctx, 0x3a0), digest)
                        mstore(add(ctx, 0x3c0), add(27, shr(255, vs)))
                        mstore(add(ctx, 0x3e0), calldataload(add(p, 17)))
                        mstore(add(ctx, 0x400), sigS)
                        mstore(0x00, 0)
                        pop(staticcall(gas(), 0x01, add(ctx, 0x3a0), 0x80, 0x00, 0x20))
                        let recovered := mload(0x00)
                        if or(iszero(recovered), iszero(eq(recovered, mload(add(ctx, 0x60))))) {
                            break
                        }
                    }
                    default {
                        let sigR := calldataload(add(p, 17))
                        let sigS := calldataload(add(p, 49))
                        if or(
                            or(
                                iszero(sigR),
                                iszero(lt(sigR, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551))
                            ),
                            or(
                                iszero(sigS),
                                gt(sigS, 0x7FFFFFFF800000007FFFFFFFFFFFFFFFDE737D56D38BCF4279DCE5617E3192A8)
                            )
                        ) {
                            break
                        }
                        mstore(add(ctx, 0x3a0), digest)
                        mstore(add(ctx, 0x3c0), sigR)
                        mstore(add(ctx, 0x3e0), sigS)
                        mstore(0x00, 0)
                        let answered := staticcall(gas(), 0x100, add(ctx, 0x3a0), 0xa0, 0x00, 0x20)
                        if iszero(and(answered, eq(mload(0x00), 1))) {
                            break
                        }
                    }
                    let newExcess := add(
                        excess,
                        sub(
                            mul(
                                mload(add(ctx, 0x1e0)),
                                shr(192, mload(add(mload(add(ctx, 0x180)), shl(3, div(add(temp, 8005), 10)))))
                            ),
                            mload(add(ctx, 0x200))
                        )
                    )
                    let unjudged := mload(add(ctx, 0x240))
                    switch unjudged
                    case 0 {
                        if sgt(newExcess, 0) {
                            break
                        }
                    }
                    default {
                        mstore(add(ctx, 0x240), sub(unjudged, 1))
                    }
                    excess := newExcess
                    if slt(temp, minSeen) {
                        minSeen := temp
                    }
                    if sgt(temp, maxSeen) {
                        maxSeen := temp
                    }
                    lastSequence := seq
                    last := at
                    mstore(out, head)
                    out := add(out, 12)
                }
                mstore(ctx, p)
                mstore(add(ctx, 0x40), out)
                mstore(add(ctx, 0xa0), last)
                mstore(add(ctx, 0x100), lastSequence)
                mstore(add(ctx, 0x1a0), minSeen)
                mstore(add(ctx, 0x1c0), maxSeen)
                mstore(add(ctx, 0x220), excess)
                // Never true, as in {_quietSamples}: keeps this loop from being inlined into its caller.
                if iszero(ctx) {
                    loop(ctx)
                }
            }

            let d := mload(add(b, 0xc0))
            let s := mload(add(b, 0xe0))
            let r := mload(add(s, 0x80))
            let c := mload(add(s, 0xa0))
            let t := mload(add(d, 0x140))
            let status := mload(add(c, 0xc0))
            let deviceLast := mload(t)
            let keyType := mload(add(d, 0x40))
            // Some temperature seen, the device's latest reading recorded and evaluated (the next one is then
            // evaluated too), and signatures checkable here (secp256k1, or P-256 with the precompile).
            if and(
                and(and(status, 1), iszero(iszero(deviceLast))),
                and(
                    and(iszero(lt(deviceLast, mload(add(r, 0x1a0)))), or(eq(keyType, 1), mload(add(b, 0x40)))),
                    // The current key verifies the readings after the device's latest one (keys bound to time).
                    iszero(lt(deviceLast, mload(add(d, 0x180))))
                )
            ) {
                let ctx := mload(0x40)
                let interval := mload(add(d, 0x60))
                let lo := mload(add(s, 0x180))
                let hi := mload(add(b, 0x20))
                let deliveredAt := mload(add(s, 0x60))
                if and(iszero(iszero(deliveredAt)), lt(deliveredAt, hi)) {
                    hi := deliveredAt
                }
                // Readings at or after a pending offer's boundary wait (heldFrom > 0 when an offer is pending).
                let heldFrom := mload(add(s, 0x200))
                if iszero(gt(heldFrom, hi)) {
                    hi := sub(heldFrom, 1)
                }
                // Readings observed from the device's revocation on are refused (full path).
                let revokedFrom := mload(add(d, 0x1a0))
                if iszero(gt(revokedFrom, hi)) {
                    hi := sub(revokedFrom, 1)
                }
                mstore(ctx, add(batch.offset, from))
                mstore(add(ctx, 0x20), add(batch.offset, to))
                mstore(add(ctx, 0x40), bufferEnd)
                mstore(add(ctx, 0x60), mload(add(d, 0x80)))
                mstore(add(ctx, 0x80), keyType)
                mstore(add(ctx, 0xa0), deviceLast)
                mstore(add(ctx, 0xc0), gapLimit)
                mstore(add(ctx, 0xe0), hi)
                mstore(add(ctx, 0x100), mload(add(d, 0x100)))
                mstore(add(ctx, 0x140), shl(8, lo))
                mstore(add(ctx, 0x160), shl(8, sub(mload(add(s, 0x1a0)), lo)))
                mstore(add(ctx, 0x180), mload(add(b, 0x60)))
                mstore(add(ctx, 0x1a0), mload(add(c, 0x20)))
                mstore(add(ctx, 0x1c0), mload(add(c, 0x40)))
                mstore(add(ctx, 0x1e0), interval)
                mstore(add(ctx, 0x200), mktStep)
                mstore(add(ctx, 0x220), mktExcess)
                mstore(add(ctx, 0x240), mktUnjudged)
                mstore(add(ctx, 0x260), readingTypehash)
                mstore(add(ctx, 0x280), mload(d))
                mstore(add(ctx, 0x300), 0) // flags: quiet readings have none
                mstore(add(ctx, 0x340), 0x1901)
                mstore(add(ctx, 0x360), mload(b))
                mstore(add(ctx, 0x400), mload(add(d, 0xa0)))
                mstore(add(ctx, 0x420), mload(add(d, 0xc0)))
                loop(ctx)
                quiet := div(sub(mload(add(ctx, 0x40)), bufferEnd), 12)
                if quiet {
                    lastAt := mload(add(ctx, 0xa0))
                    stoppedAt := sub(mload(ctx), batch.offset)
                    newBufferEnd := mload(add(ctx, 0x40))
                    coldest := mload(add(ctx, 0x1a0))
                    warmest := mload(add(ctx, 0x1c0))
                    mktExcess := mload(add(ctx, 0x220))
                    mstore(add(d, 0x100), mload(add(ctx, 0x100)))
                }
            }
        }
        if (quiet != 0) _settleQuiet(b, quiet, lastAt, coldest, warmest, mktExcess, 0);
    }

    /// @dev The longest gap since the device's previous reading that is not missing data, for the quiet loops.
    /// With the check off, 2^40: every forward step passes (times are below 2^40), while a late reading's
    /// `at - last - 1` wraps around and fails (not(0) would let it through).
    function _gapLimit(Batch memory b) private pure returns (uint256) {
        uint256 intervals = b.shipment.rules.maxGapIntervals;
        // intervals is a profile's uint8-sized field and the interval at most a day: the product fits.
        unchecked {
            return intervals == 0 ? 1 << 40 : intervals * b.device.intervalSeconds;
        }
    }

    /// @dev The MKT state a quiet loop carries: interval x limit factor, the excess (weighted sum - limit factor x
    /// seconds, two's complement: the MKT is above its limit iff the excess is positive) and how many readings
    /// come before the MKT is judged (its minimum coverage not reached yet).
    function _mktForQuiet(
        Batch memory b
    ) private pure returns (uint256 intervalLimit, uint256 excess, uint256 unjudged) {
        TemperatureRules.Rules memory r = b.shipment.rules;
        // The MKT limit is judged on the device's own readings.
        TemperatureRules.DeviceState memory c = b.device.state;
        uint256 interval = b.device.intervalSeconds;
        // Factors and seconds are below 2^64 (see TemperatureRules.apply_): products fit; the excess wraps on
        // purpose, and the intervals are non-zero (the registry refuses 0).
        unchecked {
            intervalLimit = interval * r.mktLimitFactor;
            excess = c.mktWeightedSum - r.mktLimitFactor * c.mktSeconds;
            if (c.mktSeconds < r.mktMinCoverageSeconds) {
                unjudged = (r.mktMinCoverageSeconds - c.mktSeconds - 1) / interval;
            }
        }
    }

    /// @dev How many excursion seconds {_quietSamples} may charge from `observedAt` on without a breach new to the
    /// device in the custody period: none unless `observedAt` is in the current period and a run of one interval
    /// stays under the single-excursion limit (or that breach is announced for the device in this period); then
    /// what is left under the device's cumulative budget (or no bound once that breach is announced).
    function _excursionRoom(Batch memory b, uint256 observedAt) private pure returns (uint256) {
        ShipmentCache memory s = b.shipment;
        DeviceCache memory d = b.device;
        TemperatureRules.Rules memory r = s.rules;
        uint256 recorded = d.breachPeriod == s.custodyIndex ? d.breachFlags : 0;
        uint256 interval = d.intervalSeconds;
        if (
            observedAt < s.custodySince ||
            (interval >= r.maxSingleExcursionSeconds && recorded & (1 << uint256(BreachReason.SingleExcursion)) == 0)
        ) return 0;
        if (recorded & (1 << uint256(BreachReason.CumulativeExcursion)) != 0) return type(uint32).max;
        uint256 used = d.state.cumulativeExcursionSeconds;
        // The breach comes when the cumulative time reaches the budget: the room ends one second before.
        return used < r.maxCumulativeExcursionSeconds ? r.maxCumulativeExcursionSeconds - used - 1 : 0;
    }

    /// @dev Records what `quiet` readings applied by a quiet loop do besides min/max and the MKT excess (given as
    /// the loop left them): the count, the latest times, the MKT sums (the device's, and the shipment's by the same
    /// amount), the excursion time (`excursion`: seconds << 1 | whether the last reading is out of range) charged
    /// to the device and the current custodian, and the runs that end or start (each reading was the device's next
    /// and above the freeze threshold; out of range only alone, a run of one interval), exactly as
    /// {TemperatureRules.apply_} and {_charge} do for each.
    function _settleQuiet(
        Batch memory b,
        uint256 quiet,
        uint256 lastAt,
        int256 minSeen,
        int256 maxSeen,
        uint256 excess,
        uint256 excursion
    ) private pure {
        ShipmentCache memory s = b.shipment;
        TemperatureRules.ShipmentState memory c = s.state;
        DeviceCache memory d = b.device;
        TemperatureRules.DeviceState memory t = d.state;
        uint256 interval = d.intervalSeconds;
        // Bounded as in TemperatureRules.apply_; the excess plus limit x seconds is the device's weighted sum (mod
        // 2^256), and the shipment's sum grows by as much as the device's.
        unchecked {
            c.readingCount += quiet;
            c.minCentiC = minSeen;
            c.maxCentiC = maxSeen;
            if (lastAt > c.lastObservedAt) c.lastObservedAt = lastAt;
            uint256 seconds_ = quiet * interval;
            t.mktSeconds += seconds_;
            uint256 deviceSum = excess + s.rules.mktLimitFactor * t.mktSeconds;
            c.mktSeconds += seconds_;
            c.mktWeightedSum += deviceSum - t.mktWeightedSum;
            t.mktWeightedSum = deviceSum;
            uint256 added = excursion >> 1;
            c.cumulativeExcursionSeconds += added;
            t.cumulativeExcursionSeconds += added;
            s.custodyExcursionSeconds += added;
            if (added != 0 && c.longestExcursionSeconds < interval) c.longestExcursionSeconds = interval;
            // Runs: the device's freeze run ends (every reading was above the threshold); its excursion run is the
            // last reading alone if that one is out of range.
            if (t.freezeStartedAt != 0) c.freezeDevices -= 1;
            if (t.excursionStartedAt != 0) c.excursionDevices -= 1;
        }
        t.freezeStartedAt = 0;
        if (excursion & 1 != 0) {
            // The last reading is out of range after one in range: a run of one interval from it.
            t.excursionStartedAt = lastAt;
            c.excursionDevices += 1;
        } else {
            t.excursionStartedAt = 0;
        }
        t.lastObservedAt = lastAt;
        s.dirty = true;
        d.dirty = true;
    }

    /// @dev Emits {ReadingsRecorded} from the buffer {_processReadings} filled: `end` is past its last record.
    function _emitReadingsRecorded(uint64 shipmentId, uint64 deviceId, uint256 buffer, uint256 end) private {
        bytes32 topic = ReadingsRecorded.selector;
        assembly ("memory-safe") {
            let length := sub(end, add(buffer, 0x60))
            mstore(buffer, deviceId)
            mstore(add(buffer, 0x20), 0x40)
            mstore(add(buffer, 0x40), length)
            mstore(end, 0) // ABI padding of the last record
            log2(buffer, add(0x60, and(add(length, 31), not(31))), topic, shipmentId)
        }
    }

    // ---------------------------------------------------------------- memory

    /// @dev Takes `size` bytes of free memory (given back by {_release} when the item is done).
    function _allocate(uint256 size) private pure returns (uint256 ptr) {
        assembly ("memory-safe") {
            ptr := mload(0x40)
            mstore(0x40, add(ptr, and(add(size, 31), not(31))))
        }
    }

    /// @dev Gives back everything allocated since `ptr` was taken: nothing allocated after it outlives the item.
    function _release(uint256 ptr) private pure {
        assembly ("memory-safe") {
            mstore(0x40, ptr)
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

    function _max(int256 a, int256 b) private pure returns (int256) {
        return a > b ? a : b;
    }

    function _min(int256 a, int256 b) private pure returns (int256) {
        return a < b ? a : b;
    }

    function _signExtend16(uint256 raw) private pure returns (int256 v) {
        assembly ("memory-safe") {
            v := signextend(1, raw)
        }
    }
}
