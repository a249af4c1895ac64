// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title IReadingsInbox
/// @notice Entry point for device-signed temperature readings, and the per-shipment condition they build.
/// @dev Anyone may submit: the relayer is untrusted, because every item carries the device's own EIP-712
/// signature (domain "ColdChain", version "2"). The batch is a packed byte string (docs/protocol.md):
/// ```
/// batch    := version:u8 (=2) item*
/// READINGS := 0x01 deviceId:u64 count:u16
///             { sequence:u32 observedAt:u40 tempCentiC:i16 flags:u8 previousObservedAt:u40 sig:64 } * count
/// WINDOW   := 0x02 deviceId:u64 firstSequence:u32 firstObservedAt:u40 intervalSeconds:u32 count:u16
///             previousObservedAt:u40 samples:(count * {tempCentiC:i16 flags:u8}) sig:64
/// ```
/// An invalid item is skipped with {ReadingSkipped}; only a malformed envelope or a pause reverts the batch.
///
/// Order independence: every reading names the observation time of its device's previous reading
/// (`previousObservedAt`, signed). A device's readings are recorded only as a chain: the next one is the reading
/// that names the latest recorded one, and the first one in a shipment is the reading whose predecessor lies
/// before the start. A reading that arrives before its predecessor waits (`SequenceGap`, retryable). So each
/// device's readings are applied in the order the device took them, whatever the order, batching or relayer;
/// every rule is judged per device, and what the shipment holds across devices are sums, minima, maxima and
/// unions, which commute (docs/architecture.md, "Order-independent verdicts").
interface IReadingsInbox {
    /// @notice Why an item was skipped.
    enum SkipReason {
        BadSignature,
        UnknownDevice,
        RevokedDevice,
        UnboundDevice,
        ShipmentNotActive,
        StaleSequence,
        DuplicateSequence,
        FutureTimestamp,
        OutsideShipmentWindow,
        MalformedItem,
        CustodyPending,
        SequenceGap
    }

    /// @notice Kinds of breach. A shipment's and a custody period's `breachFlags` have bit `1 << reason` set.
    enum BreachReason {
        None,
        AbsoluteLimit,
        SingleExcursion,
        CumulativeExcursion,
        Freeze,
        MissingData,
        DeviceFault,
        MktExceeded
    }

    /// @notice Aggregate condition of a shipment over all its accepted readings.
    /// @param readingCount readings accepted (including those in the adaptation period or flagged faulty)
    /// @param minCentiC lowest evaluated temperature (valid when `statusFlags & HAS_TEMPERATURE`)
    /// @param maxCentiC highest evaluated temperature
    /// @param lastObservedAt latest observation time accepted
    /// @param cumulativeExcursionSeconds time out of range, summed over devices (each device's own is in
    /// {DeviceEvidence}: the cumulative budget is judged per device)
    /// @param longestExcursionSeconds longest continuous out-of-range run of any device so far
    /// @param statusFlags HAS_TEMPERATURE (1); EXCURSION_ACTIVE (2): some device's latest reading is out of range;
    /// FREEZE_ACTIVE (4): some device's latest reading is at or below the freeze threshold; MKT_ABOVE_LIMIT (8): the
    /// MKT of all devices' readings pooled is above the limit (MktExceeded itself is judged per device)
    /// @param breachFlags bit `1 << BreachReason` for every kind of breach recorded
    /// @param firstBreach the breach with the earliest observation time (ties: the lowest reason; `None` if none)
    /// @param excursionDevices devices whose latest reading is out of range
    /// @param freezeDevices devices whose latest reading is at or below the freeze threshold
    /// @param firstBreachAt observation time of `firstBreach` (0 if none)
    /// @param mktWeightedSum sum of seconds x exp(-10000 K / T) x 1e30 over evaluated readings of all devices
    /// @param mktSeconds seconds covered by evaluated readings of all devices
    struct Condition {
        uint32 readingCount;
        int16 minCentiC;
        int16 maxCentiC;
        uint40 lastObservedAt;
        uint32 cumulativeExcursionSeconds;
        uint32 longestExcursionSeconds;
        uint8 statusFlags;
        uint16 breachFlags;
        BreachReason firstBreach;
        uint8 excursionDevices;
        uint8 freezeDevices;
        uint40 firstBreachAt;
        uint128 mktWeightedSum;
        uint64 mktSeconds;
    }

    /// @notice Per-device tracking of a device travelling with a shipment.
    /// @param shipmentId shipment the device is bound to (0 = none)
    /// @param lastSequence sequence of the latest reading recorded (informational: the chain is by time)
    /// @param lastObservedAt latest observation time recorded for the current shipment (0 = none yet): the next
    /// reading recorded is the one whose `previousObservedAt` is this
    /// @param excursionStartedAt start of the device's ongoing out-of-range run (0 = none)
    /// @param freezeStartedAt start of the device's ongoing at-or-below-freeze run (0 = none)
    struct DeviceTrack {
        uint64 shipmentId;
        uint32 lastSequence;
        uint40 lastObservedAt;
        uint40 excursionStartedAt;
        uint40 freezeStartedAt;
    }

    /// @notice What one device's readings established in one shipment: the rules judged per device read it.
    /// @param mktWeightedSum the device's MKT sum (as in {Condition}): MktExceeded is judged on it
    /// @param mktSeconds seconds covered by the device's evaluated readings
    /// @param cumulativeExcursionSeconds the device's time out of range: CumulativeExcursion is judged on it
    /// @param breachPeriod custody period of `breachFlags`
    /// @param breachFlags kinds of breach already announced for this device in period `breachPeriod`
    struct DeviceEvidence {
        uint128 mktWeightedSum;
        uint64 mktSeconds;
        uint32 cumulativeExcursionSeconds;
        uint16 breachPeriod;
        uint16 breachFlags;
    }

    /// @notice The batch does not start with a supported version byte, or an item runs past its end or has an
    /// unknown kind. `offset` is where decoding stopped.
    error BatchMalformed(uint256 offset);

    /// @notice Readings of one READINGS item were accepted. `readings` holds 12 bytes per accepted reading, in
    /// the order of the item: sequence (uint32), observedAt (uint40), tempCentiC (int16, two's complement) and
    /// flags (uint8), big-endian, exactly the first 12 bytes of the reading in the batch.
    /// @dev One event per item, not per reading: 8 gas per byte of a record instead of 1,381 gas per reading
    /// for an event of its own. The oracle and the SDK rebuild a shipment's history from it.
    event ReadingsRecorded(uint64 indexed shipmentId, uint64 deviceId, bytes readings);

    /// @notice A device window was accepted: reading i has sequence `firstSequence + i`, observation time
    /// `firstObservedAt + i * intervalSeconds`, and `samples[3i..3i+3]` = tempCentiC (int16) | flags (uint8).
    event WindowRecorded(
        uint64 indexed shipmentId,
        uint64 deviceId,
        uint32 firstSequence,
        uint40 firstObservedAt,
        uint32 intervalSeconds,
        bytes samples
    );

    /// @notice An item was skipped; `count` readings starting at `sequence` (1 for a single reading). Retryable:
    /// `CustodyPending` (accepted once the pending custody offer is accepted, withdrawn or expired), `SequenceGap`
    /// (accepted once its predecessor is recorded) and `FutureTimestamp` (once the block time catches up). Final:
    /// `DuplicateSequence` (observed at or before the device's latest recorded reading: recorded already) and
    /// `StaleSequence` (names a predecessor older than the latest recorded reading: the device signed two
    /// histories, or lost its state). Only StaleSequence, DuplicateSequence, FutureTimestamp, OutsideShipmentWindow,
    /// CustodyPending and SequenceGap are emitted after the device's signature verified; the others can be caused
    /// by anyone.
    event ReadingSkipped(uint64 indexed deviceId, uint32 sequence, uint16 count, SkipReason reason);

    /// @notice A breach was recorded and charged to the custodian of period `periodIndex`, who held the
    /// shipment at `observedAt` (the time of the reading that caused it). Once per device, period and kind: the
    /// device's first reading of that period that raised it.
    event BreachRecorded(
        uint64 indexed shipmentId,
        address indexed custodian,
        BreachReason reason,
        uint32 periodIndex,
        uint64 deviceId,
        uint32 sequence,
        uint40 observedAt
    );

    /// @notice A run (single excursion or freeze) that crossed its limit in a later custody period began while
    /// `custodian` held the shipment: `runSeconds` of it fall in period `periodIndex`. Emitted for every period
    /// the run spans, the crossing one included, next to the {BreachRecorded} of the crossing period.
    event BreachRunShared(
        uint64 indexed shipmentId,
        address indexed custodian,
        BreachReason reason,
        uint32 periodIndex,
        uint64 deviceId,
        uint32 runSeconds
    );

    /// @notice Verifies and records a batch of signed readings; skips every invalid item with {ReadingSkipped}.
    /// @return accepted number of readings recorded
    /// @return skipped number of readings skipped
    function submitReadings(bytes calldata batch) external returns (uint256 accepted, uint256 skipped);

    /// @notice A shipment's aggregate condition.
    function condition(uint64 shipmentId) external view returns (Condition memory);

    /// @notice A device's tracking state (binding, head of its chain, ongoing runs).
    function deviceTrack(uint64 deviceId) external view returns (DeviceTrack memory);

    /// @notice What the readings of `deviceId` established in shipment `shipmentId` (zero if none).
    function deviceEvidence(uint64 shipmentId, uint64 deviceId) external view returns (DeviceEvidence memory);

    /// @notice Whether the device's reading observed at `observedAt` is recorded in its current shipment: its
    /// chain holds every reading from the shipment's start to its latest recorded one.
    function isRecorded(uint64 deviceId, uint40 observedAt) external view returns (bool);

    /// @notice Seconds a future observation time may lead the block time.
    function maxFutureSkewSeconds() external view returns (uint32);
}
