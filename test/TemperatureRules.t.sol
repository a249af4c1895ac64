// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";
import {MktLib} from "../contracts/libraries/MktLib.sol";
import {TemperatureRules} from "../contracts/libraries/TemperatureRules.sol";
import {MktTable} from "../contracts/MktTable.sol";

import {Prng} from "./utils/Prng.sol";
import {vaccineProfile} from "./utils/Profiles.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @notice The rules as the tests describe them: a profile, its MKT limit factor and the shipment's times.
struct RulesInput {
    IShipments.TemperatureProfile profile;
    uint256 mktLimitFactor;
    uint256 startedAt;
    uint256 evaluateFrom;
}

/// @notice One reading as the tests describe it.
struct Sample {
    uint256 observedAt;
    int256 tempCentiC;
    uint256 flags;
    uint256 intervalSeconds;
    uint256 mktFactor;
}

/// @notice Runs the library on the contract's stored representation (IReadingsInbox.Condition and DeviceTrack),
/// converting to and from the engine's full-word working state as the inbox does, and returns the updated
/// condition and track.
contract TemperatureRulesHarness {
    IShipments.TemperatureProfile private _profile;

    function apply_(
        RulesInput memory input,
        IReadingsInbox.Condition memory c,
        IReadingsInbox.DeviceTrack memory t,
        Sample memory s
    ) external returns (IReadingsInbox.Condition memory, IReadingsInbox.DeviceTrack memory, uint16, uint32) {
        // The inbox prepares rules from the stored profile.
        _profile = input.profile;
        TemperatureRules.Rules memory rules;
        TemperatureRules.prepare(rules, _profile, input.mktLimitFactor, input.startedAt);
        TemperatureRules.ShipmentState memory st = TemperatureRules.ShipmentState({
            readingCount: c.readingCount,
            minCentiC: c.minCentiC,
            maxCentiC: c.maxCentiC,
            lastObservedAt: c.lastObservedAt,
            cumulativeExcursionSeconds: c.cumulativeExcursionSeconds,
            currentExcursionSeconds: c.currentExcursionSeconds,
            statusFlags: c.statusFlags,
            breachFlags: c.breachFlags,
            firstBreach: uint256(c.firstBreach),
            mktWeightedSum: c.mktWeightedSum,
            mktSeconds: c.mktSeconds
        });
        TemperatureRules.DeviceState memory ds = TemperatureRules.DeviceState({
            lastObservedAt: t.lastObservedAt,
            excursionStartedAt: t.excursionStartedAt,
            freezeStartedAt: t.freezeStartedAt
        });
        (uint256 breaches, uint256 excursionSeconds) = TemperatureRules.apply_(
            rules,
            st,
            ds,
            s.observedAt,
            s.tempCentiC,
            s.flags,
            s.intervalSeconds,
            s.mktFactor
        );
        c.readingCount = uint32(st.readingCount);
        c.minCentiC = int16(st.minCentiC);
        c.maxCentiC = int16(st.maxCentiC);
        c.lastObservedAt = uint40(st.lastObservedAt);
        c.cumulativeExcursionSeconds = uint32(st.cumulativeExcursionSeconds);
        c.currentExcursionSeconds = uint32(st.currentExcursionSeconds);
        c.statusFlags = uint8(st.statusFlags);
        c.breachFlags = uint16(st.breachFlags);
        c.firstBreach = IReadingsInbox.BreachReason(st.firstBreach);
        c.mktWeightedSum = uint128(st.mktWeightedSum);
        c.mktSeconds = uint64(st.mktSeconds);
        t.lastObservedAt = uint40(ds.lastObservedAt);
        t.excursionStartedAt = uint40(ds.excursionStartedAt);
        t.freezeStartedAt = uint40(ds.freezeStartedAt);
        return (c, t, uint16(breaches), uint32(excursionSeconds));
    }
}

/// @title TemperatureRulesTest
/// @notice TemperatureRules.apply_ against a reference model written from the NatSpec of TemperatureRules and
/// IShipments.TemperatureProfile, not from the code:
/// - every reading stands for its device's interval; cumulative excursion never resets;
/// - a reading observed after its device's latest one is in order: it is checked for a gap (longer than
///   maxGapIntervals intervals since the device's previous reading, or since the start) and extends or ends the
///   device's single-excursion and freeze runs; any other reading is late and forms a run of one interval;
/// - readings flagged 0x01 (sensor fault) or observed before startedAt + adaptationSeconds are counted but their
///   temperature is not evaluated; faults (faultFlagMask) and gaps are judged for every reading;
/// - durations are breaches at or above their limit (>=), temperatures outside [min, max] (strictly) are out of
///   range, temperatures at or below freezeCentiC count towards freeze;
/// - MKT: once covered seconds reach mktMinCoverageSeconds, above the limit iff the weighted sum exceeds
///   mktLimitFactor x seconds.
/// The model keeps runs as booleans plus start times, and "late" as "not after the device's latest reading" (a
/// second reading at the same time as the latest one is late: the NatSpec says "before"; the code treats equal
/// times as late, and so does the model).
contract TemperatureRulesTest is TestBase {
    using Prng for Prng.Rng;

    uint256 private constant T0 = 1_767_225_600;
    uint256 private constant MAX_DEVICES = 3;

    uint256 private constant B_ABSOLUTE = 1 << 1;
    uint256 private constant B_SINGLE = 1 << 2;
    uint256 private constant B_CUMULATIVE = 1 << 3;
    uint256 private constant B_FREEZE = 1 << 4;
    uint256 private constant B_MISSING = 1 << 5;
    uint256 private constant B_FAULT = 1 << 6;
    uint256 private constant B_MKT = 1 << 7;

    TemperatureRulesHarness private harness;
    MktTable private table;

    /// @dev The model's view of a shipment.
    struct ModelShipment {
        uint256 readings;
        bool hasTemperature;
        int256 minCentiC;
        int256 maxCentiC;
        uint256 latestObservedAt;
        uint256 cumulativeSeconds;
        uint256 currentRunSeconds;
        bool excursionActive;
        bool freezeActive;
        bool mktAbove;
        uint256 breaches;
        uint256 firstBreach;
        uint256 mktSum;
        uint256 mktSeconds;
    }

    /// @dev The model's view of a device.
    struct ModelDevice {
        uint256 intervalSeconds;
        bool hasReading;
        uint256 latestAt;
        bool inRun;
        uint256 runStart;
        bool inFreeze;
        uint256 freezeStart;
    }

    /// @dev Library state and model state side by side, for up to MAX_DEVICES devices.
    struct World {
        RulesInput rules;
        IReadingsInbox.Condition condition;
        IReadingsInbox.DeviceTrack[] tracks;
        ModelShipment model;
        ModelDevice[] devices;
    }

    /// @dev What one step returned.
    struct Outcome {
        uint256 breaches;
        uint256 excursionSeconds;
    }

    function setUp() public {
        harness = new TemperatureRulesHarness();
        table = new MktTable();
    }

    // ================================================================ fuzz: random sequences

    /// forge-config: default.fuzz.runs = 200
    function testFuzz_apply_randomSequencesMatchModel(uint256 seed, uint256 readings) public {
        _checkRandomSequence(seed, bound(readings, 1, 60));
    }

    function test_apply_randomSequencesMatchModel_replay() public {
        uint256[4] memory seeds = [uint256(0), 7, 1234, uint256(keccak256("who"))];
        for (uint256 i = 0; i < seeds.length; ++i) _checkRandomSequence(seeds[i], 60);
    }

    function _checkRandomSequence(uint256 seed, uint256 readings) private {
        Prng.Rng memory rng = Prng.init(seed);
        World memory w = _newWorld(_randomProfile(rng), rng.between(1, MAX_DEVICES));
        for (uint256 d = 0; d < w.devices.length; ++d) {
            uint256 k = rng.next() % 4;
            w.devices[d].intervalSeconds =
                k == 0
                    ? 60
                    : k == 1
                        ? 300
                        : k == 2
                            ? 600
                            : 900;
        }
        for (uint256 i = 0; i < readings; ++i) {
            uint256 d = rng.next() % w.devices.length;
            uint256 at = _randomTime(rng, w, d);
            int256 temp = _randomTemperature(rng, w.rules.profile);
            uint256 flags = rng.chance(85) ? 0 : rng.next() % 256;
            _step(w, d, at, temp, flags);
        }
    }

    function _randomProfile(Prng.Rng memory rng) private view returns (IShipments.TemperatureProfile memory p) {
        p.minCentiC = int16(rng.betweenInt(-2000, 2000));
        p.maxCentiC = int16(int256(p.minCentiC) + rng.betweenInt(1, 1500));
        p.absoluteMinCentiC = int16(int256(p.minCentiC) - rng.betweenInt(0, 1000));
        p.absoluteMaxCentiC = int16(int256(p.maxCentiC) + rng.betweenInt(0, 1000));
        p.freezeCentiC = int16(int256(p.minCentiC) + rng.betweenInt(-600, 100));
        p.maxFreezeSeconds = uint32(_randomDuration(rng));
        p.maxSingleExcursionSeconds = uint32(_randomDuration(rng));
        p.maxCumulativeExcursionSeconds = uint32(rng.chance(20) ? 0 : _randomDuration(rng) * rng.between(1, 4));
        p.adaptationSeconds = uint32(rng.chance(30) ? 0 : rng.between(0, 3600));
        p.maxGapIntervals = uint8(rng.between(0, 5));
        p.faultFlagMask = uint8(rng.next());
        p.mktLimitCentiC = int16(rng.betweenInt(-200, 400) * 10);
        p.mktMinCoverageSeconds = uint32(rng.chance(30) ? 0 : rng.between(0, 4 * 3600));
        p.mktEnabled = rng.chance(60);
        // `view`: the factor of the limit comes from the real table.
        MktLib.factorOf(address(table), p.mktLimitCentiC);
    }

    /// @dev 0 (rule off), a multiple of a common interval, or one second either side of it.
    function _randomDuration(Prng.Rng memory rng) private pure returns (uint256) {
        if (rng.chance(20)) return 0;
        uint256 base = [uint256(60), 300, 600, 900][rng.next() % 4] * rng.between(1, 8);
        uint256 k = rng.next() % 3;
        return
            k == 0
                ? base
                : k == 1
                    ? base + 1
                    : base - 1;
    }

    /// @dev Mostly the device's next interval; sometimes a gap at the limit, late, or at the same time.
    function _randomTime(Prng.Rng memory rng, World memory w, uint256 d) private pure returns (uint256) {
        ModelDevice memory dev = w.devices[d];
        uint256 interval = dev.intervalSeconds;
        uint256 startedAt = w.rules.startedAt;
        if (!dev.hasReading) return startedAt + rng.between(0, 3 * interval);
        uint256 kind = rng.next() % 100;
        if (kind < 70) return dev.latestAt + interval;
        if (kind < 80) {
            uint256 gap = uint256(w.rules.profile.maxGapIntervals) * interval;
            return dev.latestAt + gap + rng.between(0, 2) - (gap > 0 ? 1 : 0);
        }
        if (kind < 84) return dev.latestAt;
        if (kind < 88) return dev.latestAt + rng.between(1, 3 * interval);
        uint256 back = rng.between(1, 4 * interval);
        return dev.latestAt - back < startedAt ? startedAt : dev.latestAt - back;
    }

    function _randomTemperature(
        Prng.Rng memory rng,
        IShipments.TemperatureProfile memory p
    ) private pure returns (int256) {
        uint256 kind = rng.next() % 14;
        if (kind == 0) return p.maxCentiC;
        if (kind == 1) return int256(p.maxCentiC) + 1;
        if (kind == 2) return p.minCentiC;
        if (kind == 3) return int256(p.minCentiC) - 1;
        if (kind == 4) return p.freezeCentiC;
        if (kind == 5) return int256(p.freezeCentiC) + 1;
        if (kind == 6) return int256(p.absoluteMaxCentiC) + rng.betweenInt(0, 1);
        if (kind == 7) return int256(p.absoluteMinCentiC) - rng.betweenInt(0, 1);
        if (kind == 8) return int256(p.mktLimitCentiC) + rng.betweenInt(-6, 6);
        if (kind == 9) return rng.betweenInt(-9000, 9000);
        if (kind < 12) return int256(p.maxCentiC) + rng.betweenInt(1, 300);
        return rng.betweenInt(p.minCentiC, p.maxCentiC);
    }

    // ================================================================ one step: library vs model

    function _newWorld(
        IShipments.TemperatureProfile memory p,
        uint256 deviceCount
    ) private view returns (World memory w) {
        w.rules.profile = p;
        w.rules.mktLimitFactor = p.mktEnabled ? MktLib.factorOf(address(table), p.mktLimitCentiC) : 0;
        w.rules.startedAt = T0;
        w.rules.evaluateFrom = T0 + p.adaptationSeconds;
        w.tracks = new IReadingsInbox.DeviceTrack[](deviceCount);
        w.devices = new ModelDevice[](deviceCount);
    }

    /// @dev Applies one reading of device `d` to both and asserts they agree on everything.
    function _step(
        World memory w,
        uint256 d,
        uint256 observedAt,
        int256 temp,
        uint256 flags
    ) private returns (Outcome memory got) {
        Sample memory s = Sample({
            observedAt: observedAt,
            tempCentiC: temp,
            flags: flags,
            intervalSeconds: w.devices[d].intervalSeconds,
            mktFactor: MktLib.factorOf(address(table), temp)
        });
        uint16 breaches;
        uint32 excursionSeconds;
        (w.condition, w.tracks[d], breaches, excursionSeconds) = harness.apply_(w.rules, w.condition, w.tracks[d], s);
        got = Outcome(breaches, excursionSeconds);
        Outcome memory want = _model(w, d, s);
        vm.assertEq(got.breaches, want.breaches, "breaches");
        vm.assertEq(got.excursionSeconds, want.excursionSeconds, "excursionSeconds");
        _assertConditionMatches(w.condition, w.model);
        _assertTrackMatches(w.tracks[d], w.devices[d]);
    }

    function _assertConditionMatches(IReadingsInbox.Condition memory c, ModelShipment memory m) private pure {
        vm.assertEq(c.readingCount, m.readings, "readingCount");
        vm.assertEq(c.lastObservedAt, m.latestObservedAt, "lastObservedAt");
        vm.assertEq(c.cumulativeExcursionSeconds, m.cumulativeSeconds, "cumulativeExcursionSeconds");
        vm.assertEq(c.currentExcursionSeconds, m.currentRunSeconds, "currentExcursionSeconds");
        uint256 flags =
            (m.hasTemperature ? 1 : 0) | (m.excursionActive ? 2 : 0) | (m.freezeActive ? 4 : 0) | (m.mktAbove ? 8 : 0);
        vm.assertEq(c.statusFlags, flags, "statusFlags");
        vm.assertEq(c.breachFlags, m.breaches, "breachFlags");
        vm.assertEq(uint256(c.firstBreach), m.firstBreach, "firstBreach");
        vm.assertEq(c.mktWeightedSum, m.mktSum, "mktWeightedSum");
        vm.assertEq(c.mktSeconds, m.mktSeconds, "mktSeconds");
        if (m.hasTemperature) {
            vm.assertEq(c.minCentiC, m.minCentiC, "minCentiC");
            vm.assertEq(c.maxCentiC, m.maxCentiC, "maxCentiC");
        }
    }

    function _assertTrackMatches(IReadingsInbox.DeviceTrack memory t, ModelDevice memory d) private pure {
        vm.assertEq(t.lastObservedAt, d.hasReading ? d.latestAt : 0, "track.lastObservedAt");
        vm.assertEq(t.excursionStartedAt, d.inRun ? d.runStart : 0, "track.excursionStartedAt");
        vm.assertEq(t.freezeStartedAt, d.inFreeze ? d.freezeStart : 0, "track.freezeStartedAt");
    }

    // ================================================================ the reference model

    function _model(World memory w, uint256 d, Sample memory s) private pure returns (Outcome memory out) {
        ModelShipment memory m = w.model;
        ModelDevice memory dev = w.devices[d];
        IShipments.TemperatureProfile memory p = w.rules.profile;
        m.readings += 1;
        if (s.observedAt > m.latestObservedAt) m.latestObservedAt = s.observedAt;

        bool late = dev.hasReading && s.observedAt <= dev.latestAt;
        if (!late) {
            uint256 since = dev.hasReading ? dev.latestAt : w.rules.startedAt;
            uint256 allowed = uint256(p.maxGapIntervals) * dev.intervalSeconds;
            if (p.maxGapIntervals > 0 && s.observedAt - since > allowed) out.breaches |= B_MISSING;
            dev.hasReading = true;
            dev.latestAt = s.observedAt;
        }
        if (s.flags & p.faultFlagMask != 0) out.breaches |= B_FAULT;
        if (s.flags & 0x01 == 0 && s.observedAt >= w.rules.startedAt + p.adaptationSeconds) {
            _modelTemperature(w, dev, s, late, out);
        }
        if (out.breaches != 0) {
            if (m.firstBreach == 0) {
                uint256 reason = 1;
                while (out.breaches & (1 << reason) == 0) ++reason;
                m.firstBreach = reason;
            }
            m.breaches |= out.breaches;
        }
    }

    function _modelTemperature(
        World memory w,
        ModelDevice memory dev,
        Sample memory s,
        bool late,
        Outcome memory out
    ) private pure {
        ModelShipment memory m = w.model;
        IShipments.TemperatureProfile memory p = w.rules.profile;
        int256 temp = s.tempCentiC;
        uint256 interval = s.intervalSeconds;
        if (!m.hasTemperature || temp < m.minCentiC) m.minCentiC = temp;
        if (!m.hasTemperature || temp > m.maxCentiC) m.maxCentiC = temp;
        m.hasTemperature = true;

        if (temp > p.absoluteMaxCentiC || temp < p.absoluteMinCentiC) out.breaches |= B_ABSOLUTE;

        m.mktSum += interval * s.mktFactor;
        m.mktSeconds += interval;
        if (p.mktEnabled && m.mktSeconds >= p.mktMinCoverageSeconds) {
            m.mktAbove = m.mktSum > w.rules.mktLimitFactor * m.mktSeconds;
            if (m.mktAbove) out.breaches |= B_MKT;
        }

        if (temp > p.maxCentiC || temp < p.minCentiC) {
            out.excursionSeconds = interval;
            m.cumulativeSeconds += interval;
            if (p.maxCumulativeExcursionSeconds > 0 && m.cumulativeSeconds >= p.maxCumulativeExcursionSeconds) {
                out.breaches |= B_CUMULATIVE;
            }
            uint256 run = interval;
            if (!late) {
                if (!dev.inRun) (dev.inRun, dev.runStart) = (true, s.observedAt);
                run = s.observedAt + interval - dev.runStart;
                m.currentRunSeconds = run;
                m.excursionActive = true;
            }
            if (p.maxSingleExcursionSeconds > 0 && run >= p.maxSingleExcursionSeconds) out.breaches |= B_SINGLE;
        } else if (!late) {
            dev.inRun = false;
            m.currentRunSeconds = 0;
            m.excursionActive = false;
        }

        if (p.maxFreezeSeconds == 0) return;
        if (temp <= p.freezeCentiC) {
            uint256 run = interval;
            if (!late) {
                if (!dev.inFreeze) (dev.inFreeze, dev.freezeStart) = (true, s.observedAt);
                run = s.observedAt + interval - dev.freezeStart;
                m.freezeActive = true;
            }
            if (run >= p.maxFreezeSeconds) out.breaches |= B_FREEZE;
        } else if (!late) {
            dev.inFreeze = false;
            m.freezeActive = false;
        }
    }

    // ================================================================ concrete: scenario helpers

    /// @dev A world with one device of `intervalSeconds`, its clock at `T0 + adaptation`.
    function _scenario(
        IShipments.TemperatureProfile memory p,
        uint256 intervalSeconds
    ) private view returns (World memory w) {
        w = _newWorld(p, 1);
        w.devices[0].intervalSeconds = intervalSeconds;
    }

    /// @dev `count` in-order readings of device 0 at `temp`, one interval apart after its latest (or from
    /// evaluateFrom); returns the breaches raised and the 1-based index of the first reading raising `watch`.
    function _feed(
        World memory w,
        int256 temp,
        uint256 count,
        uint256 watch
    ) private returns (uint256 breaches, uint256 firstWatchAt) {
        ModelDevice memory dev = w.devices[0];
        for (uint256 i = 1; i <= count; ++i) {
            uint256 at = dev.hasReading ? dev.latestAt + dev.intervalSeconds : w.rules.evaluateFrom;
            Outcome memory o = _step(w, 0, at, temp, 0);
            breaches |= o.breaches;
            if (firstWatchAt == 0 && o.breaches & watch != 0) firstWatchAt = i;
        }
    }

    function _quietProfile() private pure returns (IShipments.TemperatureProfile memory p) {
        p.minCentiC = -8000;
        p.maxCentiC = 8000;
        p.absoluteMinCentiC = -8000;
        p.absoluteMaxCentiC = 8000;
        p.freezeCentiC = -8000;
        p.mktLimitCentiC = 2500;
    }

    /// @dev WHO PQS 10-day (type 1) high alarm: at or above 45 degrees C for 1 h, one reading per 10 min.
    function _whoHighProfile() private pure returns (IShipments.TemperatureProfile memory p) {
        p = _quietProfile();
        p.maxCentiC = 4499; // out of range means >= 45.00 degrees C
        p.maxSingleExcursionSeconds = 3600;
        p.freezeCentiC = -50; // <= -0.5 degrees C
        p.maxFreezeSeconds = 3600;
    }

    /// @dev WHO PQS 10-day (type 1) cumulative alarm: at or above 30 degrees C for 10 h in all.
    function _whoCumulativeProfile() private pure returns (IShipments.TemperatureProfile memory p) {
        p = _quietProfile();
        p.maxCentiC = 2999; // out of range means >= 30.00 degrees C
        p.maxCumulativeExcursionSeconds = 10 * 3600;
    }

    function _vaccineNoAdaptation() private pure returns (IShipments.TemperatureProfile memory p) {
        p = vaccineProfile();
        p.adaptationSeconds = 0;
    }

    // ================================================================ concrete: WHO 10-day logger

    function test_who_highAlarmAfterOneHourAt45C() public {
        World memory w = _scenario(_whoHighProfile(), 600);
        (uint256 b, ) = _feed(w, 4500, 5, B_SINGLE); // 50 min at 45.00: no alarm
        vm.assertEq(b, 0, "50 min at 45 C");
        _feed(w, 2000, 1, 0);
        (b, ) = _feed(w, 4499, 30, B_SINGLE); // 5 h at 44.99: below the threshold
        vm.assertEq(b, 0, "44.99 C never alarms");
        uint256 at;
        (b, at) = _feed(w, 4500, 6, B_SINGLE);
        vm.assertEq(at, 6, "alarm with the 6th 10-min reading (exactly 1 h)");
        vm.assertEq(w.condition.currentExcursionSeconds, 3600, "current excursion");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.SingleExcursion), "first");
    }

    function test_who_cumulativeAlarmAfterTenHoursAt30C() public {
        World memory w = _scenario(_whoCumulativeProfile(), 600);
        uint256 b;
        for (uint256 day = 0; day < 4; ++day) {
            (uint256 hot, ) = _feed(w, 3000, 12, B_CUMULATIVE); // 2 h at 30.00 each day
            (uint256 cool, ) = _feed(w, 2999, 60, B_CUMULATIVE); // 29.99 never counts
            b |= hot | cool;
        }
        vm.assertEq(b, 0, "8 h in all: no alarm");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 8 * 3600, "8 h counted");
        uint256 at;
        (b, at) = _feed(w, 3100, 13, B_CUMULATIVE);
        vm.assertEq(at, 12, "alarm when the total reaches exactly 10 h");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 10 * 3600 + 600, "cumulative never resets");
    }

    function test_who_freezeAlarmAfterOneHourAtMinus05C() public {
        World memory w = _scenario(_whoHighProfile(), 600);
        (uint256 b, ) = _feed(w, -50, 5, B_FREEZE);
        vm.assertEq(b, 0, "50 min at -0.5 C");
        _feed(w, -49, 1, 0); // -0.49 C ends the run
        (b, ) = _feed(w, -49, 12, B_FREEZE);
        vm.assertEq(b, 0, "-0.49 C is above the threshold");
        uint256 at;
        (, at) = _feed(w, -50, 3, B_FREEZE);
        vm.assertEq(at, 0, "30 min");
        (, at) = _feed(w, -300, 3, B_FREEZE);
        vm.assertEq(at, 3, "alarm with the 6th reading at or below -0.5 C");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.FREEZE_ACTIVE, TemperatureRules.FREEZE_ACTIVE, "on");
    }

    /// @dev Ten days at one reading per 10 minutes (1440 readings), fed to both WHO profiles, with the events
    /// a type-1 logger must catch on the days they happen and no alarm from the near misses before them.
    function test_who_tenDayTrip() public {
        World memory high = _scenario(_whoHighProfile(), 600);
        World memory cumulative = _scenario(_whoCumulativeProfile(), 600);
        uint256[8] memory alarmDay;
        for (uint256 day = 1; day <= 10; ++day) {
            // One external call per day: memory starts afresh, so its cost stays linear in the trip's length.
            uint256 raised;
            (high, cumulative, raised) = this.whoTripDay(high, cumulative, day);
            for (uint256 r = 1; r < 8; ++r) {
                if (alarmDay[r] == 0 && raised & (1 << r) != 0) alarmDay[r] = day;
            }
        }
        vm.assertEq(alarmDay[uint256(IReadingsInbox.BreachReason.CumulativeExcursion)], 7, "cumulative on day 7");
        vm.assertEq(alarmDay[uint256(IReadingsInbox.BreachReason.Freeze)], 8, "freeze on day 8");
        vm.assertEq(alarmDay[uint256(IReadingsInbox.BreachReason.SingleExcursion)], 9, "high on day 9");
        vm.assertEq(alarmDay[uint256(IReadingsInbox.BreachReason.MissingData)], 0, "no gaps");
        vm.assertEq(high.condition.readingCount, 1440, "readings");
        vm.assertEq(cumulative.condition.cumulativeExcursionSeconds, 50 * 60 + 5 * 2 * 3600 + 60 * 60, "30 C time");
    }

    /// @notice One day of {test_who_tenDayTrip} (external so that each day runs in fresh memory).
    function whoTripDay(
        World memory high,
        World memory cumulative,
        uint256 day
    ) external returns (World memory, World memory, uint256 raised) {
        for (uint256 slot = 0; slot < 144; ++slot) {
            int256 temp = _whoTripTemperature(day, slot);
            uint256 at = T0 + ((day - 1) * 144 + slot) * 600;
            raised |= _step(high, 0, at, temp, 0).breaches | _step(cumulative, 0, at, temp, 0).breaches;
        }
        return (high, cumulative, raised);
    }

    /// @dev 5 C, except: day 2 45 C for 50 min; days 3-7 31 C for 2 h; day 8 -0.5 C for 70 min; day 9 45 C 1 h.
    function _whoTripTemperature(uint256 day, uint256 slot) private pure returns (int256) {
        if (day == 2 && slot >= 60 && slot < 65) return 4500;
        if (day >= 3 && day <= 7 && slot >= 72 && slot < 84) return 3100;
        if (day == 8 && slot >= 30 && slot < 37) return -50;
        if (day == 9 && slot >= 90 && slot < 96) return 4550;
        return 500;
    }

    // ================================================================ concrete: 2-8 C vaccine

    function test_vaccine_61MinuteExcursionBreaches() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 60); // every reading below is evaluated
        (uint256 b, ) = _feed(w, 500, 30, type(uint256).max);
        vm.assertEq(b, 0, "30 min at 5 C");
        uint256 at;
        (b, at) = _feed(w, 801, 61, B_SINGLE);
        vm.assertEq(at, 60, "breach at 60 min out of range (>=)");
        vm.assertEq(b, B_SINGLE, "only the single excursion");
        vm.assertEq(w.condition.currentExcursionSeconds, 61 * 60, "61 min");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 61 * 60, "61 min in all");
        (b, ) = _feed(w, 800, 1, type(uint256).max);
        vm.assertEq(w.condition.currentExcursionSeconds, 0, "8.00 C is in range: the excursion ends");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.SingleExcursion), "first");
    }

    function test_vaccine_59MinuteExcursionsDoNotBreach() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 60);
        (uint256 b, ) = _feed(w, 199, 59, type(uint256).max);
        _feed(w, 200, 1, 0);
        (uint256 b2, ) = _feed(w, 801, 59, type(uint256).max);
        vm.assertEq(b | b2, 0, "two 59-minute excursions");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 2 * 59 * 60, "both counted");
    }

    function test_vaccine_readingsDuringAdaptationAreNotEvaluated() public {
        World memory w = _scenario(vaccineProfile(), 60);
        for (uint256 i = 1; i <= 10; ++i) {
            Outcome memory o = _step(w, 0, T0 + i * 60 - 1, 2400, 0); // 24 C while the logger adapts
            vm.assertEq(o.breaches, 0, "not evaluated");
        }
        vm.assertEq(w.condition.statusFlags & TemperatureRules.HAS_TEMPERATURE, 0, "no temperature yet");
        Outcome memory first = _step(w, 0, T0 + 600, 2400, 0); // exactly at evaluateFrom
        vm.assertEq(first.excursionSeconds, 60, "evaluated from startedAt + adaptationSeconds on");
        vm.assertEq(w.condition.readingCount, 11, "all counted");
    }

    // ================================================================ concrete: boundaries (>=)

    function test_boundary_rangeLimitsAreInRange() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 300);
        vm.assertEq(_step(w, 0, T0 + 300, 800, 0).excursionSeconds, 0, "max is in range");
        vm.assertEq(_step(w, 0, T0 + 600, 200, 0).excursionSeconds, 0, "min is in range");
        vm.assertEq(_step(w, 0, T0 + 900, 801, 0).excursionSeconds, 300, "max + 0.01");
        vm.assertEq(_step(w, 0, T0 + 1200, 199, 0).excursionSeconds, 300, "min - 0.01");
    }

    function test_boundary_absoluteLimits() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 300);
        vm.assertEq(_step(w, 0, T0 + 300, 2500, 0).breaches & B_ABSOLUTE, 0, "at absolute max");
        vm.assertEq(_step(w, 0, T0 + 600, -500, 0).breaches & B_ABSOLUTE, 0, "at absolute min");
        vm.assertEq(_step(w, 0, T0 + 900, 2501, 0).breaches & B_ABSOLUTE, B_ABSOLUTE, "above");
        vm.assertEq(_step(w, 0, T0 + 1200, -501, 0).breaches & B_ABSOLUTE, B_ABSOLUTE, "below");
    }

    function test_boundary_singleAndCumulativeExactlyAtLimit() public {
        IShipments.TemperatureProfile memory p = vaccineProfile();
        p.maxSingleExcursionSeconds = 900;
        p.maxCumulativeExcursionSeconds = 1500;
        World memory w = _scenario(p, 300);
        (uint256 b, uint256 at) = _feed(w, 900, 3, B_SINGLE);
        vm.assertEq(at, 3, "single: 3 x 300 s = 900 s breaches");
        _feed(w, 500, 1, 0);
        (b, at) = _feed(w, 900, 2, B_CUMULATIVE);
        vm.assertEq(at, 2, "cumulative: 5 x 300 s = 1500 s breaches");
        vm.assertEq(b & B_SINGLE, 0, "new run of 600 s");
    }

    function test_boundary_freezeAtThreshold() public {
        World memory w = _scenario(vaccineProfile(), 600);
        (, uint256 at) = _feed(w, -50, 6, B_FREEZE);
        vm.assertEq(at, 6, "-0.50 C counts: breach at 3600 s");
        _feed(w, -49, 1, 0);
        vm.assertEq(w.condition.statusFlags & TemperatureRules.FREEZE_ACTIVE, 0, "-0.49 C ends the run");
        (, at) = _feed(w, -49, 10, B_FREEZE);
        vm.assertEq(at, 0, "-0.49 C never freezes");
    }

    function test_boundary_gapOfExactlyMaxIntervals() public {
        World memory w = _scenario(vaccineProfile(), 300); // maxGapIntervals = 3: 900 s allowed
        vm.assertEq(_step(w, 0, T0 + 900, 500, 0).breaches & B_MISSING, 0, "900 s after the start");
        vm.assertEq(_step(w, 0, T0 + 1800, 500, 0).breaches & B_MISSING, 0, "900 s after the previous");
        vm.assertEq(_step(w, 0, T0 + 2701, 500, 0).breaches & B_MISSING, B_MISSING, "901 s");
        World memory late = _scenario(vaccineProfile(), 300);
        vm.assertEq(_step(late, 0, T0 + 901, 500, 0).breaches & B_MISSING, B_MISSING, "first gap from startedAt");
    }

    function test_boundary_mktAtLimitIsNotAbove() public {
        IShipments.TemperatureProfile memory p = vaccineProfile();
        p.mktMinCoverageSeconds = 3600;
        World memory w = _scenario(p, 600);
        (uint256 b, ) = _feed(w, 800, 12, B_MKT); // MKT exactly 8.0 C for 2 h
        vm.assertEq(b & B_MKT, 0, "at the limit");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.MKT_ABOVE_LIMIT, 0, "flag off");
        (, uint256 at) = _feed(w, 806, 1, B_MKT); // rounds to 8.1 C: the mean moves above 8.0 C
        vm.assertEq(at, 1, "just above");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.MKT_ABOVE_LIMIT, 8, "flag on");
        World memory early = _scenario(p, 600);
        (b, ) = _feed(early, 2000, 5, B_MKT);
        vm.assertEq(b & B_MKT, 0, "not judged before 3600 s of coverage");
        (, at) = _feed(early, 2000, 1, B_MKT);
        vm.assertEq(at, 1, "judged once covered");
    }

    // ================================================================ concrete: late readings, faults, firsts

    function test_lateReading_countsAloneAndNeitherJoinsNorBreaksTheRun() public {
        IShipments.TemperatureProfile memory p = vaccineProfile();
        p.maxSingleExcursionSeconds = 1200;
        World memory w = _scenario(p, 300);
        _feed(w, 900, 3, 0); // run of 900 s
        uint256 latest = w.devices[0].latestAt;
        Outcome memory o = _step(w, 0, latest - 600, 500, 0); // late, in range: does not end the run
        vm.assertEq(o.excursionSeconds, 0, "in range");
        vm.assertEq(w.condition.currentExcursionSeconds, 900, "run untouched");
        o = _step(w, 0, latest - 300, 950, 0); // late, out of range: counts 300 s on its own
        vm.assertEq(o.excursionSeconds, 300, "counts towards cumulative");
        vm.assertEq(o.breaches & B_SINGLE, 0, "a run of one interval");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 1200, "cumulative includes it");
        (, uint256 at) = _feed(w, 900, 1, B_SINGLE);
        vm.assertEq(at, 1, "the in-order run goes on: 1200 s");
        vm.assertEq(w.condition.maxCentiC, 950, "late reading counts for max");
    }

    function test_sensorFault_isNotEvaluatedButIsADeviceFaultWhenMasked() public {
        World memory w = _scenario(vaccineProfile(), 300); // faultFlagMask 0x05
        Outcome memory o = _step(w, 0, T0 + 600, 9999, TemperatureRules.FLAG_SENSOR_FAULT);
        vm.assertEq(o.excursionSeconds, 0, "99.99 C not evaluated");
        vm.assertEq(o.breaches, B_FAULT, "device fault only");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.HAS_TEMPERATURE, 0, "no temperature");
        o = _step(w, 0, T0 + 900, 500, TemperatureRules.FLAG_LOW_BATTERY);
        vm.assertEq(o.breaches, 0, "low battery is not in the mask");
        o = _step(w, 0, T0 + 1200, 500, TemperatureRules.FLAG_TAMPER);
        vm.assertEq(o.breaches, B_FAULT, "tamper is");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.DeviceFault), "first");
    }

    function test_firstBreach_isTheLowestReasonOfTheFirstBreachingReading() public {
        World memory w = _scenario(vaccineProfile(), 300);
        // A reading 2 h after the start, above the absolute max, with the tamper flag: three breaches at once.
        Outcome memory o = _step(w, 0, T0 + 7200, 3000, TemperatureRules.FLAG_TAMPER);
        vm.assertEq(o.breaches, B_ABSOLUTE | B_MISSING | B_FAULT, "three");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "lowest");
        _step(w, 0, T0 + 7500, -3000, 0);
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "kept");
    }

    function test_twoDevices_runsAreTrackedPerDevice() public {
        IShipments.TemperatureProfile memory p = vaccineProfile();
        p.maxSingleExcursionSeconds = 900;
        World memory w = _newWorld(p, 2);
        w.devices[0].intervalSeconds = 300;
        w.devices[1].intervalSeconds = 300;
        _step(w, 0, T0 + 600, 900, 0);
        _step(w, 1, T0 + 600, 500, 0); // device 1 in range: current excursion is that of the last reporter
        vm.assertEq(w.condition.currentExcursionSeconds, 0, "last reporter in range");
        _step(w, 0, T0 + 900, 900, 0);
        Outcome memory o = _step(w, 0, T0 + 1200, 900, 0);
        vm.assertEq(o.breaches & B_SINGLE, B_SINGLE, "device 0's run was not broken by device 1");
    }
}
