// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../interfaces/IReadingsInbox.sol";
import {IShipments} from "../interfaces/IShipments.sol";

/// @title TemperatureRules
/// @notice The rules engine: applies one accepted reading to a shipment's condition and to the reporting
/// device's state, and says which breaches the reading raises and how many excursion seconds it adds.
/// @dev Pure, so tests call it alone. Every reading stands for its device's recording interval, as commercial
/// loggers count time. The inbox hands each device's readings over in the order the device took them (its chain,
/// see {IReadingsInbox}): every reading is checked for a gap since the device's previous one (missing data) and
/// extends or ends the device's continuous runs (single excursion, freeze). Every rule is judged on one device's
/// readings (the cumulative budget and the MKT on the device's own sums); what the shipment state gathers across
/// devices are sums, minima, maxima, unions and counts, so it does not depend on how devices interleave.
///
/// Gas: this runs once per reading (the inbox's hot path), so the working state is kept in memory structs of
/// full words (no masking of packed fields on every access), disabled limits are turned into unreachable ones
/// when the rules are prepared (no "is it enabled" branch per reading), and arithmetic is unchecked within the
/// bounds stated below. Compared with the same logic over packed structs and checked arithmetic this saves
/// about 2,500 gas per reading.
library TemperatureRules {
    /// @notice Condition status flag: at least one temperature was evaluated (min/max are meaningful).
    uint256 internal constant HAS_TEMPERATURE = 1;
    /// @notice Condition status flag: some device's latest reading is out of range.
    uint256 internal constant EXCURSION_ACTIVE = 2;
    /// @notice Condition status flag: some device's latest reading is at or below the freeze threshold.
    uint256 internal constant FREEZE_ACTIVE = 4;
    /// @notice Condition status flag: the MKT of all devices' readings pooled is above the profile's limit.
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

    /// @notice A shipment's condition (see {IReadingsInbox.Condition}) in full words. The fast paths of the inbox
    /// read the first fields at fixed offsets: readingCount 0x00, minCentiC 0x20, maxCentiC 0x40, statusFlags 0xc0.
    struct ShipmentState {
        uint256 readingCount;
        int256 minCentiC;
        int256 maxCentiC;
        uint256 lastObservedAt;
        uint256 cumulativeExcursionSeconds;
        uint256 longestExcursionSeconds;
        uint256 statusFlags;
        uint256 breachFlags;
        uint256 firstBreach;
        uint256 mktWeightedSum;
        uint256 mktSeconds;
        uint256 excursionDevices;
        uint256 freezeDevices;
        uint256 firstBreachAt;
    }

    /// @notice One device's state in its shipment, in full words: its track (see {IReadingsInbox.DeviceTrack})
    /// and its own sums (see {IReadingsInbox.DeviceEvidence}). The fast paths read lastObservedAt at 0x00 and
    /// excursionStartedAt at 0x20.
    struct DeviceState {
        uint256 lastObservedAt;
        uint256 excursionStartedAt;
        uint256 freezeStartedAt;
        uint256 cumulativeExcursionSeconds;
        uint256 mktWeightedSum;
        uint256 mktSeconds;
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
    /// @dev Preconditions (checked by the inbox): the reading is the device's next one (`observedAt` after
    /// `t.lastObservedAt`), `observedAt >= rules.startedAt`, observation times below 2^40, `interval` at most one
    /// day, `tempCentiC` an int16, `mktFactor` a table entry (< 2^64). With these, no sum below can overflow: a
    /// shipment would need more than 2^150 readings; at most MAX_DEVICES_PER_SHIPMENT devices are counted.
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

            // Missing data: the gap since the device's previous reading (or since the start) is longer than
            // maxGapIntervals recording intervals.
            uint256 previous = t.lastObservedAt != 0 ? t.lastObservedAt : r.startedAt;
            if (r.maxGapIntervals != 0 && observedAt - previous > r.maxGapIntervals * interval) {
                breaches = MISSING_DATA;
            }
            t.lastObservedAt = observedAt;
            if (flags & r.faultFlagMask != 0) breaches |= DEVICE_FAULT;

            if (flags & FLAG_SENSOR_FAULT == 0 && observedAt >= r.evaluateFrom) {
                if (c.statusFlags & HAS_TEMPERATURE == 0) {
                    c.minCentiC = tempCentiC;
                    c.maxCentiC = tempCentiC;
                    c.statusFlags |= HAS_TEMPERATURE;
                } else if (tempCentiC < c.minCentiC) {
                    c.minCentiC = tempCentiC;
                } else if (tempCentiC > c.maxCentiC) {
                    c.maxCentiC = tempCentiC;
                }

                if (tempCentiC < r.absoluteMinCentiC || tempCentiC > r.absoluteMaxCentiC) breaches |= ABSOLUTE_LIMIT;

                // Mean kinetic temperature: the shipment pools every device's readings; the limit is judged on the
                // device's own, once they cover enough time.
                c.mktSeconds += interval;
                c.mktWeightedSum += interval * mktFactor;
                uint256 mktSeconds = t.mktSeconds + interval;
                uint256 mktSum = t.mktWeightedSum + interval * mktFactor;
                t.mktSeconds = mktSeconds;
                t.mktWeightedSum = mktSum;
                if (mktSeconds >= r.mktMinCoverageSeconds && mktSum > r.mktLimitFactor * mktSeconds) {
                    breaches |= MKT_EXCEEDED;
                }

                // Range: single (continuous) and cumulative excursion, both of this device.
                if (tempCentiC < r.minCentiC || tempCentiC > r.maxCentiC) {
                    excursionSeconds = interval;
                    c.cumulativeExcursionSeconds += interval;
                    uint256 cumulative = t.cumulativeExcursionSeconds + interval;
                    t.cumulativeExcursionSeconds = cumulative;
                    if (cumulative >= r.maxCumulativeExcursionSeconds) breaches |= CUMULATIVE_EXCURSION;
                    uint256 runStart = t.excursionStartedAt;
                    if (runStart == 0) {
                        runStart = observedAt;
                        t.excursionStartedAt = observedAt;
                        c.excursionDevices += 1;
                    }
                    uint256 run = observedAt + interval - runStart;
                    if (run > c.longestExcursionSeconds) c.longestExcursionSeconds = run;
                    if (run >= r.maxSingleExcursionSeconds) breaches |= SINGLE_EXCURSION;
                } else if (t.excursionStartedAt != 0) {
                    t.excursionStartedAt = 0;
                    c.excursionDevices -= 1;
                }

                // Freeze alarm: continuous time at or below the freeze threshold.
                if (tempCentiC <= r.freezeCentiC) {
                    uint256 runStart = t.freezeStartedAt;
                    if (runStart == 0) {
                        runStart = observedAt;
                        t.freezeStartedAt = observedAt;
                        c.freezeDevices += 1;
                    }
                    if (observedAt + interval - runStart >= r.maxFreezeSeconds) breaches |= FREEZE;
                } else if (t.freezeStartedAt != 0) {
                    t.freezeStartedAt = 0;
                    c.freezeDevices -= 1;
                }
            }

            if (breaches != 0) {
                // The first breach is the earliest observed one, whatever order the devices' readings came in.
                uint256 reason = lowestReason(breaches);
                uint256 firstAt = c.firstBreachAt;
                if (firstAt == 0 || observedAt < firstAt || (observedAt == firstAt && reason < c.firstBreach)) {
                    c.firstBreach = reason;
                    c.firstBreachAt = observedAt;
                }
                c.breachFlags |= breaches;
            }
        }
    }

    /// @notice The condition's status flags as a function of its sums and counts (see {IReadingsInbox.Condition}).
    function statusOf(Rules memory r, ShipmentState memory c) internal pure returns (uint256 status) {
        status = c.statusFlags & HAS_TEMPERATURE;
        if (c.excursionDevices != 0) status |= EXCURSION_ACTIVE;
        if (c.freezeDevices != 0) status |= FREEZE_ACTIVE;
        // Factors and seconds are below 2^64: the product fits.
        unchecked {
            if (c.mktSeconds >= r.mktMinCoverageSeconds && c.mktWeightedSum > r.mktLimitFactor * c.mktSeconds) {
                status |= MKT_ABOVE_LIMIT;
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
