// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../interfaces/IReadingsInbox.sol";
import {IShipments} from "../interfaces/IShipments.sol";

/// @title TemperatureRules
/// @notice The rules engine: applies one accepted reading to a shipment's condition and to the reporting
/// device's track, and says which breaches the reading raises and how many excursion seconds it adds.
/// @dev Pure, so tests call it alone. Every reading stands for its device's recording interval, as commercial
/// loggers count time. A reading observed after its device's latest one is in order: it is checked for a gap
/// (missing data) and extends or ends the device's continuous runs (single excursion, freeze). Any other reading
/// is late: it still counts towards cumulative excursion, absolute limits, faults, min/max and MKT, but neither
/// joins nor breaks a run: on its own it forms a run of one interval.
///
/// Gas: this runs once per reading (the inbox's hot path), so the working state is kept in memory structs of
/// full words (no masking of packed fields on every access), disabled limits are turned into unreachable ones
/// when the rules are prepared (no "is it enabled" branch per reading), and arithmetic is unchecked within the
/// bounds stated below. Compared with the same logic over packed structs and checked arithmetic this saves
/// about 2,500 gas per reading.
library TemperatureRules {
    /// @notice Condition status flag: at least one temperature was evaluated (min/max are meaningful).
    uint256 internal constant HAS_TEMPERATURE = 1;
    /// @notice Condition status flag: the device that reported last is out of range.
    uint256 internal constant EXCURSION_ACTIVE = 2;
    /// @notice Condition status flag: the device that reported last is at or below the freeze threshold.
    uint256 internal constant FREEZE_ACTIVE = 4;
    /// @notice Condition status flag: the MKT so far is above the profile's limit.
    uint256 internal constant MKT_ABOVE_LIMIT = 8;

    /// @notice Reading flag: the sensor reported an error, the temperature is not evaluated.
    uint256 internal constant FLAG_SENSOR_FAULT = 0x01;
    /// @notice Reading flag: low battery.
    uint256 internal constant FLAG_LOW_BATTERY = 0x02;
    /// @notice Reading flag: the logger's case was opened.
    uint256 internal constant FLAG_TAMPER = 0x04;

    uint256 private constant ABSOLUTE_LIMIT = 1 << uint256(IReadingsInbox.BreachReason.AbsoluteLimit);
    uint256 private constant SINGLE_EXCURSION = 1 << uint256(IReadingsInbox.BreachReason.SingleExcursion);
    uint256 private constant CUMULATIVE_EXCURSION = 1 << uint256(IReadingsInbox.BreachReason.CumulativeExcursion);
    uint256 private constant FREEZE = 1 << uint256(IReadingsInbox.BreachReason.Freeze);
    uint256 private constant MISSING_DATA = 1 << uint256(IReadingsInbox.BreachReason.MissingData);
    uint256 private constant DEVICE_FAULT = 1 << uint256(IReadingsInbox.BreachReason.DeviceFault);
    uint256 private constant MKT_EXCEEDED = 1 << uint256(IReadingsInbox.BreachReason.MktExceeded);

    /// @notice A shipment's rules, prepared by {prepare}. Disabled limits hold values no reading can reach.
    struct Rules {
        int256 minCentiC;
        int256 maxCentiC;
        int256 absoluteMinCentiC;
        int256 absoluteMaxCentiC;
        int256 freezeCentiC;
        uint256 maxFreezeSeconds;
        uint256 maxSingleExcursionSeconds;
        uint256 maxCumulativeExcursionSeconds;
        uint256 maxGapIntervals;
        uint256 faultFlagMask;
        uint256 mktMinCoverageSeconds;
        uint256 mktLimitFactor;
        uint256 startedAt;
        uint256 evaluateFrom;
    }

    /// @notice A shipment's condition (see {IReadingsInbox.Condition}) in full words.
    struct ShipmentState {
        uint256 readingCount;
        int256 minCentiC;
        int256 maxCentiC;
        uint256 lastObservedAt;
        uint256 cumulativeExcursionSeconds;
        uint256 currentExcursionSeconds;
        uint256 statusFlags;
        uint256 breachFlags;
        uint256 firstBreach;
        uint256 mktWeightedSum;
        uint256 mktSeconds;
    }

    /// @notice The per-shipment part of a device's track (see {IReadingsInbox.DeviceTrack}) in full words.
    struct DeviceState {
        uint256 lastObservedAt;
        uint256 excursionStartedAt;
        uint256 freezeStartedAt;
    }

    /// @notice Writes the rules of the stored profile `p` into `r` (in place: the inbox reuses one `Rules` per
    /// batch), reading each packed field once.
    /// @param mktLimitFactor table factor of the profile's MKT limit (see {MktLib})
    /// @param startedAt shipment start; readings before `startedAt + adaptationSeconds` are not evaluated
    function prepare(
        Rules memory r,
        IShipments.TemperatureProfile storage p,
        uint256 mktLimitFactor,
        uint256 startedAt
    ) internal view {
        r.minCentiC = p.minCentiC;
        r.maxCentiC = p.maxCentiC;
        r.absoluteMinCentiC = p.absoluteMinCentiC;
        r.absoluteMaxCentiC = p.absoluteMaxCentiC;
        // A disabled freeze alarm: no int16 temperature is at or below type(int256).min.
        r.freezeCentiC = p.maxFreezeSeconds == 0 ? type(int256).min : int256(p.freezeCentiC);
        r.maxFreezeSeconds = p.maxFreezeSeconds;
        r.maxSingleExcursionSeconds = _limit(p.maxSingleExcursionSeconds);
        r.maxCumulativeExcursionSeconds = _limit(p.maxCumulativeExcursionSeconds);
        r.maxGapIntervals = p.maxGapIntervals;
        r.faultFlagMask = p.faultFlagMask;
        r.mktMinCoverageSeconds = p.mktEnabled ? p.mktMinCoverageSeconds : type(uint256).max;
        r.mktLimitFactor = mktLimitFactor;
        r.startedAt = startedAt;
        r.evaluateFrom = startedAt + p.adaptationSeconds;
    }

    /// @notice Applies one reading to the shipment state `c` and the device state `t` (both updated in place).
    /// @dev Preconditions (checked by the inbox): `observedAt >= rules.startedAt`, observation times below 2^40,
    /// `interval` at most one day, `tempCentiC` an int16, `mktFactor` a table entry (< 2^64). With these, no sum
    /// below can overflow: a shipment would need more than 2^150 readings.
    /// @return breaches bit set of the breaches this reading raises (bit `1 << BreachReason`)
    /// @return excursionSeconds seconds out of range this reading adds (0 or `interval`)
    // One function on purpose: it runs once per reading, and each internal call would add ~40 gas to each.
    // solhint-disable-next-line function-max-lines
    function apply_(
        Rules memory r,
        ShipmentState memory c,
        DeviceState memory t,
        uint256 observedAt,
        int256 tempCentiC,
        uint256 flags,
        uint256 interval,
        uint256 mktFactor
    ) internal pure returns (uint256 breaches, uint256 excursionSeconds) {
        unchecked {
            c.readingCount += 1;
            if (observedAt > c.lastObservedAt) c.lastObservedAt = observedAt;

            uint256 deviceLast = t.lastObservedAt;
            bool inOrder = observedAt > deviceLast;
            if (inOrder) {
                // Missing data: the gap since the device's previous reading (or since the start) is longer
                // than maxGapIntervals recording intervals.
                uint256 previous = deviceLast != 0 ? deviceLast : r.startedAt;
                if (r.maxGapIntervals != 0 && observedAt - previous > r.maxGapIntervals * interval) {
                    breaches = MISSING_DATA;
                }
                t.lastObservedAt = observedAt;
            }
            if (flags & r.faultFlagMask != 0) breaches |= DEVICE_FAULT;

            if (flags & FLAG_SENSOR_FAULT == 0 && observedAt >= r.evaluateFrom) {
                uint256 status = c.statusFlags;
                if (status & HAS_TEMPERATURE == 0) {
                    c.minCentiC = tempCentiC;
                    c.maxCentiC = tempCentiC;
                    status |= HAS_TEMPERATURE;
                } else if (tempCentiC < c.minCentiC) {
                    c.minCentiC = tempCentiC;
                } else if (tempCentiC > c.maxCentiC) {
                    c.maxCentiC = tempCentiC;
                }

                if (tempCentiC < r.absoluteMinCentiC || tempCentiC > r.absoluteMaxCentiC) breaches |= ABSOLUTE_LIMIT;

                // Mean kinetic temperature: accumulate, then judge once enough time is covered.
                uint256 mktSeconds = c.mktSeconds + interval;
                uint256 mktSum = c.mktWeightedSum + interval * mktFactor;
                c.mktSeconds = mktSeconds;
                c.mktWeightedSum = mktSum;
                if (mktSeconds >= r.mktMinCoverageSeconds) {
                    if (mktSum > r.mktLimitFactor * mktSeconds) {
                        status |= MKT_ABOVE_LIMIT;
                        breaches |= MKT_EXCEEDED;
                    } else {
                        status &= ~MKT_ABOVE_LIMIT;
                    }
                }

                // Range: single (continuous) and cumulative excursion.
                if (tempCentiC < r.minCentiC || tempCentiC > r.maxCentiC) {
                    excursionSeconds = interval;
                    uint256 cumulative = c.cumulativeExcursionSeconds + interval;
                    c.cumulativeExcursionSeconds = cumulative;
                    if (cumulative >= r.maxCumulativeExcursionSeconds) breaches |= CUMULATIVE_EXCURSION;
                    uint256 run = interval;
                    if (inOrder) {
                        uint256 runStart = t.excursionStartedAt;
                        if (runStart == 0) {
                            runStart = observedAt;
                            t.excursionStartedAt = observedAt;
                        }
                        run = observedAt + interval - runStart;
                        c.currentExcursionSeconds = run;
                        status |= EXCURSION_ACTIVE;
                    }
                    if (run >= r.maxSingleExcursionSeconds) breaches |= SINGLE_EXCURSION;
                } else if (inOrder) {
                    t.excursionStartedAt = 0;
                    c.currentExcursionSeconds = 0;
                    status &= ~EXCURSION_ACTIVE;
                }

                // Freeze alarm: continuous time at or below the freeze threshold.
                if (tempCentiC <= r.freezeCentiC) {
                    uint256 run = interval;
                    if (inOrder) {
                        uint256 runStart = t.freezeStartedAt;
                        if (runStart == 0) {
                            runStart = observedAt;
                            t.freezeStartedAt = observedAt;
                        }
                        run = observedAt + interval - runStart;
                        status |= FREEZE_ACTIVE;
                    }
                    if (run >= r.maxFreezeSeconds) breaches |= FREEZE;
                } else if (inOrder) {
                    t.freezeStartedAt = 0;
                    status &= ~FREEZE_ACTIVE;
                }
                c.statusFlags = status;
            }

            if (breaches != 0) {
                if (c.firstBreach == 0) c.firstBreach = lowestReason(breaches);
                c.breachFlags |= breaches;
            }
        }
    }

    /// @notice The lowest breach reason in a non-empty bit set.
    function lowestReason(uint256 breaches) internal pure returns (uint256 reason) {
        reason = 1;
        while (breaches & (1 << reason) == 0) ++reason;
    }

    /// @dev A duration limit where 0 means "off" becomes unreachable instead.
    function _limit(uint32 seconds_) private pure returns (uint256) {
        return seconds_ == 0 ? type(uint256).max : seconds_;
    }
}
