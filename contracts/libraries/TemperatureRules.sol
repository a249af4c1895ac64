// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../interfaces/IReadingsInbox.sol";
import {IShipments} from "../interfaces/IShipments.sol";

/// @title TemperatureRules
/// @notice The rules engine: applies one accepted reading to a shipment's condition and to the reporting
/// device's track, and says which breaches the reading raises and how many excursion seconds it adds.
/// @dev Pure, so tests call it alone. Every reading stands for its device's recording interval, as commercial
/// loggers count time. Readings arriving in time order per device extend or end the device's continuous
/// runs (single excursion, freeze) and are checked for gaps (missing data). A late reading (observed before
/// the device's latest one) still counts towards cumulative excursion, absolute limits, faults, min/max and
/// MKT, but neither joins nor breaks a run: on its own it forms a run of one interval.
library TemperatureRules {
    /// @notice Condition status flag: at least one temperature was evaluated (min/max are meaningful).
    uint8 internal constant HAS_TEMPERATURE = 1;
    /// @notice Condition status flag: the device that reported last is out of range.
    uint8 internal constant EXCURSION_ACTIVE = 2;
    /// @notice Condition status flag: the device that reported last is at or below the freeze threshold.
    uint8 internal constant FREEZE_ACTIVE = 4;
    /// @notice Condition status flag: the MKT so far is above the profile's limit.
    uint8 internal constant MKT_ABOVE_LIMIT = 8;

    /// @notice Reading flag: the sensor reported an error, the temperature is not evaluated.
    uint8 internal constant FLAG_SENSOR_FAULT = 0x01;
    /// @notice Reading flag: low battery.
    uint8 internal constant FLAG_LOW_BATTERY = 0x02;
    /// @notice Reading flag: the logger's case was opened.
    uint8 internal constant FLAG_TAMPER = 0x04;

    /// @notice A shipment's rules as the engine needs them, prepared once per shipment and batch.
    /// @param profile the rule profile
    /// @param mktLimitFactor table factor of the profile's MKT limit
    /// @param startedAt shipment start (the reference for the first gap)
    /// @param evaluateFrom `startedAt + adaptationSeconds`: earlier readings are recorded but not evaluated
    struct Rules {
        IShipments.TemperatureProfile profile;
        uint256 mktLimitFactor;
        uint256 startedAt;
        uint256 evaluateFrom;
    }

    /// @notice One reading as the engine sees it.
    struct Sample {
        uint256 observedAt;
        int256 tempCentiC;
        uint256 flags;
        uint256 intervalSeconds;
        uint256 mktFactor;
    }

    /// @notice Bit of a breach reason in `breachFlags`.
    function bit(IReadingsInbox.BreachReason reason) internal pure returns (uint16) {
        return uint16(1) << uint8(reason);
    }

    /// @notice Applies `s` to the shipment condition `c` and the device track `t` (both updated in place).
    /// @return breaches bit set of the breaches this reading raises (see {bit})
    /// @return excursionSeconds seconds out of range this reading adds (0 or its interval)
    function apply_(
        Rules memory rules,
        IReadingsInbox.Condition memory c,
        IReadingsInbox.DeviceTrack memory t,
        Sample memory s
    ) internal pure returns (uint16 breaches, uint32 excursionSeconds) {
        IShipments.TemperatureProfile memory p = rules.profile;
        c.readingCount += 1;
        if (s.observedAt > c.lastObservedAt) c.lastObservedAt = uint40(s.observedAt);

        bool inOrder = s.observedAt > t.lastObservedAt;
        if (inOrder) {
            // Missing data: the gap since the device's previous reading (or since the start) is longer than
            // maxGapIntervals recording intervals.
            uint256 previous = t.lastObservedAt != 0 ? t.lastObservedAt : rules.startedAt;
            if (p.maxGapIntervals != 0 && s.observedAt - previous > uint256(p.maxGapIntervals) * s.intervalSeconds) {
                breaches |= bit(IReadingsInbox.BreachReason.MissingData);
            }
            t.lastObservedAt = uint40(s.observedAt);
        }
        if (s.flags & p.faultFlagMask != 0) breaches |= bit(IReadingsInbox.BreachReason.DeviceFault);

        if (s.flags & FLAG_SENSOR_FAULT == 0 && s.observedAt >= rules.evaluateFrom) {
            (uint16 b, uint32 e) = _evaluateTemperature(rules, c, t, s, inOrder);
            breaches |= b;
            excursionSeconds = e;
        }

        if (breaches != 0) {
            if (c.firstBreach == IReadingsInbox.BreachReason.None) c.firstBreach = _lowest(breaches);
            c.breachFlags |= breaches;
        }
    }

    function _evaluateTemperature(
        Rules memory rules,
        IReadingsInbox.Condition memory c,
        IReadingsInbox.DeviceTrack memory t,
        Sample memory s,
        bool inOrder
    ) private pure returns (uint16 breaches, uint32 excursionSeconds) {
        IShipments.TemperatureProfile memory p = rules.profile;
        int256 temp = s.tempCentiC;
        // int16 range: the casts below are exact.
        if (c.statusFlags & HAS_TEMPERATURE == 0) {
            c.minCentiC = int16(temp);
            c.maxCentiC = int16(temp);
            c.statusFlags |= HAS_TEMPERATURE;
        } else if (temp < c.minCentiC) {
            c.minCentiC = int16(temp);
        } else if (temp > c.maxCentiC) {
            c.maxCentiC = int16(temp);
        }

        if (temp < p.absoluteMinCentiC || temp > p.absoluteMaxCentiC) {
            breaches |= bit(IReadingsInbox.BreachReason.AbsoluteLimit);
        }

        // Mean kinetic temperature: accumulate, then judge once enough time is covered.
        c.mktWeightedSum += uint128(s.intervalSeconds * s.mktFactor);
        c.mktSeconds += uint64(s.intervalSeconds);
        if (p.mktEnabled && c.mktSeconds >= p.mktMinCoverageSeconds) {
            if (c.mktWeightedSum > rules.mktLimitFactor * c.mktSeconds) {
                c.statusFlags |= MKT_ABOVE_LIMIT;
                breaches |= bit(IReadingsInbox.BreachReason.MktExceeded);
            } else {
                c.statusFlags &= ~MKT_ABOVE_LIMIT;
            }
        }

        // Range: single (continuous) and cumulative excursion.
        if (temp < p.minCentiC || temp > p.maxCentiC) {
            excursionSeconds = uint32(s.intervalSeconds);
            c.cumulativeExcursionSeconds += excursionSeconds;
            if (
                p.maxCumulativeExcursionSeconds != 0 && c.cumulativeExcursionSeconds >= p.maxCumulativeExcursionSeconds
            ) {
                breaches |= bit(IReadingsInbox.BreachReason.CumulativeExcursion);
            }
            uint256 run = s.intervalSeconds;
            if (inOrder) {
                if (t.excursionStartedAt == 0) t.excursionStartedAt = uint40(s.observedAt);
                run = s.observedAt + s.intervalSeconds - t.excursionStartedAt;
                c.currentExcursionSeconds = uint32(run);
                c.statusFlags |= EXCURSION_ACTIVE;
            }
            if (p.maxSingleExcursionSeconds != 0 && run >= p.maxSingleExcursionSeconds) {
                breaches |= bit(IReadingsInbox.BreachReason.SingleExcursion);
            }
        } else if (inOrder) {
            t.excursionStartedAt = 0;
            c.currentExcursionSeconds = 0;
            c.statusFlags &= ~EXCURSION_ACTIVE;
        }

        // Freeze alarm: continuous time at or below the freeze threshold.
        if (p.maxFreezeSeconds != 0) {
            if (temp <= p.freezeCentiC) {
                uint256 run = s.intervalSeconds;
                if (inOrder) {
                    if (t.freezeStartedAt == 0) t.freezeStartedAt = uint40(s.observedAt);
                    run = s.observedAt + s.intervalSeconds - t.freezeStartedAt;
                    c.statusFlags |= FREEZE_ACTIVE;
                }
                if (run >= p.maxFreezeSeconds) breaches |= bit(IReadingsInbox.BreachReason.Freeze);
            } else if (inOrder) {
                t.freezeStartedAt = 0;
                c.statusFlags &= ~FREEZE_ACTIVE;
            }
        }
    }

    /// @dev The lowest breach reason in a non-empty bit set.
    function _lowest(uint16 breaches) private pure returns (IReadingsInbox.BreachReason reason) {
        uint8 i = 1;
        while (breaches & (uint16(1) << i) == 0) ++i;
        return IReadingsInbox.BreachReason(i);
    }
}
