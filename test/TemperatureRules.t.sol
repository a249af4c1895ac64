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

/// @notice What one device holds in the contract's stored representation: its track and its evidence.
struct StoredDevice {
    IReadingsInbox.DeviceTrack track;
    IReadingsInbox.DeviceEvidence evidence;
}

/// @notice Runs the library on the contract's stored representation (IReadingsInbox.Condition, DeviceTrack and
/// DeviceEvidence), converting to and from the engine's full-word working state as the inbox does (the status
/// flags are written by {TemperatureRules.statusOf}, as the inbox's flush does), and returns the updated state.
contract TemperatureRulesHarness {
    IShipments.TemperatureProfile private _profile;

    function apply_(
        RulesInput memory input,
        IReadingsInbox.Condition memory c,
        StoredDevice memory d,
        Sample memory s
    ) external returns (IReadingsInbox.Condition memory, StoredDevice memory, uint16, uint32) {
        TemperatureRules.Rules memory rules = _rules(input);
        TemperatureRules.ShipmentState memory st = _load(c);
        TemperatureRules.DeviceState memory ds = TemperatureRules.DeviceState({
            lastObservedAt: d.track.lastObservedAt,
            excursionStartedAt: d.track.excursionStartedAt,
            freezeStartedAt: d.track.freezeStartedAt,
            cumulativeExcursionSeconds: d.evidence.cumulativeExcursionSeconds,
            mktWeightedSum: d.evidence.mktWeightedSum,
            mktSeconds: d.evidence.mktSeconds
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
        c = _store(rules, st);
        d.track.lastObservedAt = uint40(ds.lastObservedAt);
        d.track.excursionStartedAt = uint40(ds.excursionStartedAt);
        d.track.freezeStartedAt = uint40(ds.freezeStartedAt);
        d.evidence.cumulativeExcursionSeconds = uint32(ds.cumulativeExcursionSeconds);
        d.evidence.mktWeightedSum = uint128(ds.mktWeightedSum);
        d.evidence.mktSeconds = uint64(ds.mktSeconds);
        return (c, d, uint16(breaches), uint32(excursionSeconds));
    }

    /// @notice {TemperatureRules.statusOf} for the rules of `input`.
    function statusOf(RulesInput memory input, TemperatureRules.ShipmentState memory st) external returns (uint256) {
        return TemperatureRules.statusOf(_rules(input), st);
    }

    function _rules(RulesInput memory input) private returns (TemperatureRules.Rules memory rules) {
        // The inbox prepares rules from the stored profile.
        _profile = input.profile;
        TemperatureRules.prepare(rules, _profile, input.mktLimitFactor, input.startedAt);
    }

    function _load(IReadingsInbox.Condition memory c) private pure returns (TemperatureRules.ShipmentState memory) {
        return
            TemperatureRules.ShipmentState({
                readingCount: c.readingCount,
                minCentiC: c.minCentiC,
                maxCentiC: c.maxCentiC,
                lastObservedAt: c.lastObservedAt,
                cumulativeExcursionSeconds: c.cumulativeExcursionSeconds,
                longestExcursionSeconds: c.longestExcursionSeconds,
                statusFlags: c.statusFlags,
                breachFlags: c.breachFlags,
                firstBreach: uint256(c.firstBreach),
                mktWeightedSum: c.mktWeightedSum,
                mktSeconds: c.mktSeconds,
                excursionDevices: c.excursionDevices,
                freezeDevices: c.freezeDevices,
                firstBreachAt: c.firstBreachAt
            });
    }

    function _store(
        TemperatureRules.Rules memory rules,
        TemperatureRules.ShipmentState memory st
    ) private pure returns (IReadingsInbox.Condition memory c) {
        c.readingCount = uint32(st.readingCount);
        c.minCentiC = int16(st.minCentiC);
        c.maxCentiC = int16(st.maxCentiC);
        c.lastObservedAt = uint40(st.lastObservedAt);
        c.cumulativeExcursionSeconds = uint32(st.cumulativeExcursionSeconds);
        c.longestExcursionSeconds = uint32(st.longestExcursionSeconds);
        c.statusFlags = uint8(TemperatureRules.statusOf(rules, st));
        c.breachFlags = uint16(st.breachFlags);
        c.firstBreach = IReadingsInbox.BreachReason(st.firstBreach);
        c.excursionDevices = uint8(st.excursionDevices);
        c.freezeDevices = uint8(st.freezeDevices);
        c.firstBreachAt = uint40(st.firstBreachAt);
        c.mktWeightedSum = uint128(st.mktWeightedSum);
        c.mktSeconds = uint64(st.mktSeconds);
    }
}

/// @title TemperatureRulesTest
/// @notice TemperatureRules.apply_ against a reference model written from the NatSpec of TemperatureRules,
/// IReadingsInbox (Condition, DeviceTrack, DeviceEvidence), IShipments.TemperatureProfile and the protocol v2
/// spec, not from the code:
/// - the inbox hands each device's readings over in the order the device took them (a device's next reading is
///   observed after its latest one): the generators never produce anything else;
/// - every reading stands for its device's interval; cumulative excursion never resets;
/// - every reading is checked for a gap (longer than maxGapIntervals intervals since the device's previous
///   reading, or since the start) and extends or ends the device's single-excursion and freeze runs;
/// - readings flagged 0x01 (sensor fault) or observed before startedAt + adaptationSeconds are counted but their
///   temperature is not evaluated; faults (faultFlagMask) and gaps are judged for every reading;
/// - durations are breaches at or above their limit (>=), temperatures outside [min, max] (strictly) are out of
///   range, temperatures at or below freezeCentiC count towards freeze;
/// - every rule is judged per device: the cumulative budget on the device's own out-of-range time, the MKT (once
///   the device's own covered seconds reach mktMinCoverageSeconds, above the limit iff its weighted sum exceeds
///   mktLimitFactor x its seconds) on the device's own sums;
/// - the shipment gathers sums (readings, cumulative seconds, MKT), minima and maxima, the longest run of any
///   device, the number of devices whose latest reading is out of range / at or below freeze, the union of
///   breaches and the earliest breach (by observation time; ties: the lowest reason);
/// - status flags: HAS_TEMPERATURE, EXCURSION_ACTIVE iff some device's latest evaluated reading is out of range,
///   FREEZE_ACTIVE likewise at or below freeze, MKT_ABOVE_LIMIT iff the pooled MKT of all devices is above the
///   limit (judged once the pooled seconds reach the coverage).
/// The model keeps runs as booleans plus start times and derives the device counts and the flags from them.
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

    /// @dev The model's view of a shipment (what is pooled over devices).
    struct ModelShipment {
        uint256 readings;
        bool hasTemperature;
        int256 minCentiC;
        int256 maxCentiC;
        uint256 latestObservedAt;
        uint256 cumulativeSeconds;
        uint256 longestRunSeconds;
        uint256 breaches;
        uint256 firstBreach;
        uint256 firstBreachAt;
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
        uint256 cumulativeSeconds;
        uint256 mktSum;
        uint256 mktSeconds;
    }

    /// @dev Library state and model state side by side, for up to MAX_DEVICES devices.
    struct World {
        RulesInput rules;
        IReadingsInbox.Condition condition;
        StoredDevice[] stored;
        ModelShipment model;
        ModelDevice[] devices;
    }

    /// @dev What one step returned.
    struct Outcome {
        uint256 breaches;
        uint256 excursionSeconds;
    }

    /// @dev One reading of a device's chain, for the interleaving property.
    struct Planned {
        uint256 device;
        uint256 observedAt;
        int256 temp;
        uint256 flags;
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
        _randomIntervals(rng, w);
        for (uint256 i = 0; i < readings; ++i) {
            uint256 d = rng.next() % w.devices.length;
            uint256 at = _randomTime(rng, w, d);
            int256 temp = _randomTemperature(rng, w.rules.profile);
            uint256 flags = rng.chance(85) ? 0 : rng.next() % 256;
            _step(w, d, at, temp, flags);
        }
    }

    /// @notice Order independence (the reason for protocol v2): the same chains of readings of several devices,
    /// applied device after device and interleaved at random, give each reading the same breaches and leave the
    /// same shipment condition and device states. Both runs are held to the model step by step as well.
    /// forge-config: default.fuzz.runs = 100
    function testFuzz_apply_interleavingOfDevicesDoesNotMatter(uint256 seed) public {
        _checkInterleaving(seed);
    }

    function test_apply_interleavingOfDevicesDoesNotMatter_replay() public {
        _checkInterleaving(1);
        _checkInterleaving(2);
        _checkInterleaving(uint256(keccak256("interleave")));
    }

    function _checkInterleaving(uint256 seed) private {
        Prng.Rng memory rng = Prng.init(seed);
        IShipments.TemperatureProfile memory p = _randomProfile(rng);
        World memory a = _newWorld(p, rng.between(2, MAX_DEVICES));
        _randomIntervals(rng, a);
        World memory b = _newWorld(p, a.devices.length);
        for (uint256 d = 0; d < a.devices.length; ++d) b.devices[d].intervalSeconds = a.devices[d].intervalSeconds;

        // Each device's chain, planned on a scratch world (times need the device's latest one).
        World memory plan = _newWorld(p, a.devices.length);
        for (uint256 d = 0; d < a.devices.length; ++d) plan.devices[d].intervalSeconds = a.devices[d].intervalSeconds;
        uint256 perDevice = rng.between(5, 20);
        Planned[] memory chains = new Planned[](perDevice * a.devices.length);
        for (uint256 d = 0; d < a.devices.length; ++d) {
            for (uint256 i = 0; i < perDevice; ++i) {
                uint256 at = _randomTime(rng, plan, d);
                (plan.devices[d].hasReading, plan.devices[d].latestAt) = (true, at);
                int256 temp = _randomTemperature(rng, p);
                chains[d * perDevice + i] = Planned(d, at, temp, rng.chance(85) ? 0 : rng.next() % 256);
            }
        }

        // a: device after device (chains in the order planned). b: a random merge keeping each chain's order.
        uint256[] memory breachesA = new uint256[](chains.length);
        uint256[] memory breachesB = new uint256[](chains.length);
        for (uint256 k = 0; k < chains.length; ++k) {
            Planned memory r = chains[k];
            breachesA[k] = _step(a, r.device, r.observedAt, r.temp, r.flags).breaches;
        }
        uint256[] memory next = new uint256[](a.devices.length);
        for (uint256 k = 0; k < chains.length; ++k) {
            uint256 d = rng.next() % a.devices.length;
            while (next[d] == perDevice) d = (d + 1) % a.devices.length;
            uint256 index = d * perDevice + next[d]++;
            Planned memory r = chains[index];
            breachesB[index] = _step(b, r.device, r.observedAt, r.temp, r.flags).breaches;
        }

        for (uint256 k = 0; k < chains.length; ++k) vm.assertEq(breachesA[k], breachesB[k], "a reading's breaches");
        vm.assertEq(keccak256(abi.encode(a.condition)), keccak256(abi.encode(b.condition)), "condition");
        for (uint256 d = 0; d < a.devices.length; ++d) {
            vm.assertEq(keccak256(abi.encode(a.stored[d])), keccak256(abi.encode(b.stored[d])), "device state");
        }
    }

    function _randomIntervals(Prng.Rng memory rng, World memory w) private pure {
        for (uint256 d = 0; d < w.devices.length; ++d) {
            w.devices[d].intervalSeconds = [uint256(60), 300, 600, 900][rng.next() % 4];
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

    /// @dev The device's next observation time (always after its latest one: the inbox hands nothing else over):
    /// mostly one interval later; sometimes a gap at the missing-data limit (one second either side), or a few
    /// seconds to a few intervals later. The first one lies within three intervals of the start.
    function _randomTime(Prng.Rng memory rng, World memory w, uint256 d) private pure returns (uint256) {
        ModelDevice memory dev = w.devices[d];
        uint256 interval = dev.intervalSeconds;
        if (!dev.hasReading) return w.rules.startedAt + rng.between(0, 3 * interval);
        uint256 kind = rng.next() % 100;
        if (kind < 75) return dev.latestAt + interval;
        uint256 gap = uint256(w.rules.profile.maxGapIntervals) * interval;
        if (kind < 88 && gap > 0) return dev.latestAt + gap - 1 + rng.between(0, 2);
        return dev.latestAt + rng.between(1, 3 * interval);
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
        w.stored = new StoredDevice[](deviceCount);
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
        (w.condition, w.stored[d], breaches, excursionSeconds) = harness.apply_(w.rules, w.condition, w.stored[d], s);
        got = Outcome(breaches, excursionSeconds);
        Outcome memory want = _model(w, d, s);
        vm.assertEq(got.breaches, want.breaches, "breaches");
        vm.assertEq(got.excursionSeconds, want.excursionSeconds, "excursionSeconds");
        _assertConditionMatches(w);
        _assertDeviceMatches(w.stored[d], w.devices[d]);
    }

    function _assertConditionMatches(World memory w) private pure {
        IReadingsInbox.Condition memory c = w.condition;
        ModelShipment memory m = w.model;
        vm.assertEq(c.readingCount, m.readings, "readingCount");
        vm.assertEq(c.lastObservedAt, m.latestObservedAt, "lastObservedAt");
        vm.assertEq(c.cumulativeExcursionSeconds, m.cumulativeSeconds, "cumulativeExcursionSeconds");
        vm.assertEq(c.longestExcursionSeconds, m.longestRunSeconds, "longestExcursionSeconds");
        (uint256 excursionDevices, uint256 freezeDevices) = _modelDeviceCounts(w);
        vm.assertEq(c.excursionDevices, excursionDevices, "excursionDevices");
        vm.assertEq(c.freezeDevices, freezeDevices, "freezeDevices");
        vm.assertEq(c.statusFlags, _modelStatus(w), "statusFlags");
        vm.assertEq(c.breachFlags, m.breaches, "breachFlags");
        vm.assertEq(uint256(c.firstBreach), m.firstBreach, "firstBreach");
        vm.assertEq(c.firstBreachAt, m.firstBreachAt, "firstBreachAt");
        vm.assertEq(c.mktWeightedSum, m.mktSum, "mktWeightedSum");
        vm.assertEq(c.mktSeconds, m.mktSeconds, "mktSeconds");
        if (m.hasTemperature) {
            vm.assertEq(c.minCentiC, m.minCentiC, "minCentiC");
            vm.assertEq(c.maxCentiC, m.maxCentiC, "maxCentiC");
        }
    }

    function _assertDeviceMatches(StoredDevice memory s, ModelDevice memory d) private pure {
        vm.assertEq(s.track.lastObservedAt, d.hasReading ? d.latestAt : 0, "track.lastObservedAt");
        vm.assertEq(s.track.excursionStartedAt, d.inRun ? d.runStart : 0, "track.excursionStartedAt");
        vm.assertEq(s.track.freezeStartedAt, d.inFreeze ? d.freezeStart : 0, "track.freezeStartedAt");
        vm.assertEq(s.evidence.cumulativeExcursionSeconds, d.cumulativeSeconds, "evidence.cumulativeExcursionSeconds");
        vm.assertEq(s.evidence.mktWeightedSum, d.mktSum, "evidence.mktWeightedSum");
        vm.assertEq(s.evidence.mktSeconds, d.mktSeconds, "evidence.mktSeconds");
    }

    // ================================================================ the reference model

    function _model(World memory w, uint256 d, Sample memory s) private pure returns (Outcome memory out) {
        ModelShipment memory m = w.model;
        ModelDevice memory dev = w.devices[d];
        IShipments.TemperatureProfile memory p = w.rules.profile;
        vm.assertTrue(!dev.hasReading || s.observedAt > dev.latestAt, "generator error: not the device's next");
        m.readings += 1;
        if (s.observedAt > m.latestObservedAt) m.latestObservedAt = s.observedAt;

        uint256 since = dev.hasReading ? dev.latestAt : w.rules.startedAt;
        uint256 allowed = uint256(p.maxGapIntervals) * dev.intervalSeconds;
        if (p.maxGapIntervals > 0 && s.observedAt - since > allowed) out.breaches |= B_MISSING;
        dev.hasReading = true;
        dev.latestAt = s.observedAt;
        if (s.flags & p.faultFlagMask != 0) out.breaches |= B_FAULT;
        if (s.flags & 0x01 == 0 && s.observedAt >= w.rules.startedAt + p.adaptationSeconds) {
            _modelTemperature(w, dev, s, out);
        }
        if (out.breaches != 0) {
            uint256 reason = 1;
            while (out.breaches & (1 << reason) == 0) ++reason;
            bool earlier = m.firstBreachAt == 0 || s.observedAt < m.firstBreachAt;
            if (earlier || (s.observedAt == m.firstBreachAt && reason < m.firstBreach)) {
                (m.firstBreach, m.firstBreachAt) = (reason, s.observedAt);
            }
            m.breaches |= out.breaches;
        }
    }

    function _modelTemperature(
        World memory w,
        ModelDevice memory dev,
        Sample memory s,
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

        // MKT: pooled in the shipment, judged on the device's own sums.
        m.mktSum += interval * s.mktFactor;
        m.mktSeconds += interval;
        dev.mktSum += interval * s.mktFactor;
        dev.mktSeconds += interval;
        if (p.mktEnabled && dev.mktSeconds >= p.mktMinCoverageSeconds) {
            if (dev.mktSum > w.rules.mktLimitFactor * dev.mktSeconds) out.breaches |= B_MKT;
        }

        if (temp > p.maxCentiC || temp < p.minCentiC) {
            out.excursionSeconds = interval;
            m.cumulativeSeconds += interval;
            dev.cumulativeSeconds += interval;
            if (p.maxCumulativeExcursionSeconds > 0 && dev.cumulativeSeconds >= p.maxCumulativeExcursionSeconds) {
                out.breaches |= B_CUMULATIVE;
            }
            if (!dev.inRun) (dev.inRun, dev.runStart) = (true, s.observedAt);
            uint256 run = s.observedAt + interval - dev.runStart;
            if (run > m.longestRunSeconds) m.longestRunSeconds = run;
            if (p.maxSingleExcursionSeconds > 0 && run >= p.maxSingleExcursionSeconds) out.breaches |= B_SINGLE;
        } else {
            dev.inRun = false;
        }

        if (p.maxFreezeSeconds == 0) return;
        if (temp <= p.freezeCentiC) {
            if (!dev.inFreeze) (dev.inFreeze, dev.freezeStart) = (true, s.observedAt);
            if (s.observedAt + interval - dev.freezeStart >= p.maxFreezeSeconds) out.breaches |= B_FREEZE;
        } else {
            dev.inFreeze = false;
        }
    }

    /// @dev Devices whose latest evaluated reading is out of range / at or below freeze.
    function _modelDeviceCounts(World memory w) private pure returns (uint256 excursion, uint256 freeze) {
        for (uint256 d = 0; d < w.devices.length; ++d) {
            if (w.devices[d].inRun) ++excursion;
            if (w.devices[d].inFreeze) ++freeze;
        }
    }

    function _modelStatus(World memory w) private pure returns (uint256 flags) {
        ModelShipment memory m = w.model;
        IShipments.TemperatureProfile memory p = w.rules.profile;
        (uint256 excursion, uint256 freeze) = _modelDeviceCounts(w);
        bool mktAbove =
            p.mktEnabled && m.mktSeconds >= p.mktMinCoverageSeconds && m.mktSum > w.rules.mktLimitFactor * m.mktSeconds;
        flags = (m.hasTemperature ? 1 : 0) | (excursion > 0 ? 2 : 0) | (freeze > 0 ? 4 : 0) | (mktAbove ? 8 : 0);
    }

    // ================================================================ concrete: scenario helpers

    /// @dev A world with one device of `intervalSeconds`.
    function _scenario(
        IShipments.TemperatureProfile memory p,
        uint256 intervalSeconds
    ) private view returns (World memory w) {
        w = _newWorld(p, 1);
        w.devices[0].intervalSeconds = intervalSeconds;
    }

    /// @dev A world with two devices of `intervalSeconds` each.
    function _twoDevices(
        IShipments.TemperatureProfile memory p,
        uint256 intervalSeconds
    ) private view returns (World memory w) {
        w = _newWorld(p, 2);
        w.devices[0].intervalSeconds = intervalSeconds;
        w.devices[1].intervalSeconds = intervalSeconds;
    }

    /// @dev `count` readings of device 0 at `temp`, one interval apart after its latest (or from evaluateFrom);
    /// returns the breaches raised and the 1-based index of the first reading raising `watch`.
    function _feed(
        World memory w,
        int256 temp,
        uint256 count,
        uint256 watch
    ) private returns (uint256 breaches, uint256 firstWatchAt) {
        return _feedDevice(w, 0, temp, count, watch);
    }

    /// @dev As {_feed}, for device `d`.
    function _feedDevice(
        World memory w,
        uint256 d,
        int256 temp,
        uint256 count,
        uint256 watch
    ) private returns (uint256 breaches, uint256 firstWatchAt) {
        ModelDevice memory dev = w.devices[d];
        for (uint256 i = 1; i <= count; ++i) {
            uint256 at = dev.hasReading ? dev.latestAt + dev.intervalSeconds : w.rules.evaluateFrom;
            Outcome memory o = _step(w, d, at, temp, 0);
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
        vm.assertEq(w.condition.longestExcursionSeconds, 3000, "the 50-minute run is the longest so far");
        uint256 at;
        (b, at) = _feed(w, 4500, 6, B_SINGLE);
        vm.assertEq(at, 6, "alarm with the 6th 10-min reading (exactly 1 h)");
        vm.assertEq(w.condition.longestExcursionSeconds, 3600, "longest excursion");
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
        vm.assertEq(w.stored[0].evidence.cumulativeExcursionSeconds, 10 * 3600 + 600, "the device's own");
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
        vm.assertEq(high.condition.longestExcursionSeconds, 3600, "the day-9 hour is the longest run");
        vm.assertEq(uint256(high.condition.firstBreach), uint256(IReadingsInbox.BreachReason.Freeze), "day 8 first");
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
        vm.assertEq(w.condition.longestExcursionSeconds, 61 * 60, "61 min");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 61 * 60, "61 min in all");
        vm.assertEq(w.condition.excursionDevices, 1, "the device is out of range");
        (b, ) = _feed(w, 800, 1, type(uint256).max);
        vm.assertEq(w.stored[0].track.excursionStartedAt, 0, "8.00 C is in range: the excursion ends");
        vm.assertEq(w.condition.excursionDevices, 0, "no device out of range");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.EXCURSION_ACTIVE, 0, "not active");
        vm.assertEq(w.condition.longestExcursionSeconds, 61 * 60, "the longest run is kept");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.SingleExcursion), "first");
    }

    function test_vaccine_59MinuteExcursionsDoNotBreach() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 60);
        (uint256 b, ) = _feed(w, 199, 59, type(uint256).max);
        _feed(w, 200, 1, 0);
        (uint256 b2, ) = _feed(w, 801, 59, type(uint256).max);
        vm.assertEq(b | b2, 0, "two 59-minute excursions");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 2 * 59 * 60, "both counted");
        vm.assertEq(w.condition.longestExcursionSeconds, 59 * 60, "neither run is longer than 59 min");
    }

    function test_vaccine_readingsDuringAdaptationAreNotEvaluated() public {
        World memory w = _scenario(vaccineProfile(), 60);
        for (uint256 i = 1; i <= 10; ++i) {
            Outcome memory o = _step(w, 0, T0 + i * 60 - 1, 2400, 0); // 24 C while the logger adapts
            vm.assertEq(o.breaches, 0, "not evaluated");
        }
        vm.assertEq(w.condition.statusFlags & TemperatureRules.HAS_TEMPERATURE, 0, "no temperature yet");
        vm.assertEq(w.condition.excursionDevices, 0, "no run started");
        Outcome memory first = _step(w, 0, T0 + 600, 2400, 0); // exactly at evaluateFrom
        vm.assertEq(first.excursionSeconds, 60, "evaluated from startedAt + adaptationSeconds on");
        vm.assertEq(w.condition.readingCount, 11, "all counted");
        vm.assertEq(w.stored[0].track.excursionStartedAt, T0 + 600, "the run starts with the first evaluated one");
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

    // ================================================================ concrete: faults, firsts

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
        vm.assertEq(w.condition.firstBreachAt, T0 + 600, "the first faulty reading's time");
    }

    /// @notice A faulty sensor reading neither ends nor extends a run: runs are made of evaluated readings.
    function test_sensorFault_leavesRunsAlone() public {
        World memory w = _scenario(_vaccineNoAdaptation(), 300);
        _feed(w, 900, 2, 0);
        _step(w, 0, T0 + 1200, 500, TemperatureRules.FLAG_SENSOR_FAULT);
        vm.assertEq(w.stored[0].track.excursionStartedAt, T0, "the run goes on");
        vm.assertEq(w.condition.excursionDevices, 1, "still out of range");
    }

    function test_firstBreach_isTheLowestReasonOfTheFirstBreachingReading() public {
        World memory w = _scenario(vaccineProfile(), 300);
        // A reading 2 h after the start, above the absolute max, with the tamper flag: three breaches at once.
        Outcome memory o = _step(w, 0, T0 + 7200, 3000, TemperatureRules.FLAG_TAMPER);
        vm.assertEq(o.breaches, B_ABSOLUTE | B_MISSING | B_FAULT, "three");
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "lowest");
        vm.assertEq(w.condition.firstBreachAt, T0 + 7200, "at");
        _step(w, 0, T0 + 7500, -3000, 0);
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "kept");
        vm.assertEq(w.condition.firstBreachAt, T0 + 7200, "kept at");
    }

    /// @notice The first breach is the earliest observed one, whatever order the devices' readings came in: a
    /// device that reports later but observed its breach earlier takes it over.
    function test_firstBreach_isTheEarliestObservedAcrossDevicesWhateverTheOrder() public {
        World memory w = _twoDevices(_vaccineNoAdaptation(), 300);
        // Device 0 reports first: a reading above the absolute maximum at T0 + 1500.
        _step(w, 0, T0 + 300, 500, 0);
        _step(w, 0, T0 + 600, 500, 0);
        _step(w, 0, T0 + 900, 500, 0);
        _step(w, 0, T0 + 1200, 500, 0);
        _step(w, 0, T0 + 1500, 3000, 0);
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "0's");
        vm.assertEq(w.condition.firstBreachAt, T0 + 1500, "0's time");
        // Device 1 reports afterwards: a tamper flag (a higher reason) observed earlier, at T0 + 600.
        _step(w, 1, T0 + 300, 500, 0);
        _step(w, 1, T0 + 600, 500, TemperatureRules.FLAG_TAMPER);
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.DeviceFault), "earlier");
        vm.assertEq(w.condition.firstBreachAt, T0 + 600, "earlier time");
        // A later breach of either device changes nothing.
        _step(w, 1, T0 + 900, -3000, 0);
        vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.DeviceFault), "kept");
        vm.assertEq(w.condition.breachFlags, B_ABSOLUTE | B_FAULT, "both kinds");
    }

    /// @notice Two breaches observed at the same time by two devices: the lowest reason, in either order.
    function test_firstBreach_tieAtTheSameTimeIsTheLowestReasonInEitherOrder() public {
        for (uint256 order = 0; order < 2; ++order) {
            World memory w = _twoDevices(_vaccineNoAdaptation(), 300);
            // Device `faulty` is tampered with at T0 + 300, device `hot` is above the absolute maximum then.
            (uint256 faulty, uint256 hot) = order == 0 ? (uint256(0), uint256(1)) : (uint256(1), uint256(0));
            _step(w, faulty, T0 + 300, 500, TemperatureRules.FLAG_TAMPER);
            vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.DeviceFault), "one");
            _step(w, hot, T0 + 300, 3000, 0);
            vm.assertEq(uint256(w.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "tie");
            vm.assertEq(w.condition.firstBreachAt, T0 + 300, "tie time");
            // And the other way round: the fault comes second at the same time and does not replace it.
            World memory v = _twoDevices(_vaccineNoAdaptation(), 300);
            _step(v, hot, T0 + 300, 3000, 0);
            _step(v, faulty, T0 + 300, 500, TemperatureRules.FLAG_TAMPER);
            vm.assertEq(uint256(v.condition.firstBreach), uint256(IReadingsInbox.BreachReason.AbsoluteLimit), "kept");
            vm.assertEq(keccak256(abi.encode(w.condition)), keccak256(abi.encode(v.condition)), "same condition");
        }
    }

    // ================================================================ concrete: judged per device

    function test_twoDevices_runsAreTrackedPerDevice() public {
        IShipments.TemperatureProfile memory p = vaccineProfile();
        p.maxSingleExcursionSeconds = 900;
        World memory w = _twoDevices(p, 300);
        _step(w, 0, T0 + 600, 900, 0);
        _step(w, 1, T0 + 600, 500, 0); // device 1 in range: device 0's run goes on
        vm.assertEq(w.condition.statusFlags & TemperatureRules.EXCURSION_ACTIVE, 2, "some device out of range");
        vm.assertEq(w.condition.excursionDevices, 1, "one device");
        _step(w, 0, T0 + 900, 900, 0);
        Outcome memory o = _step(w, 0, T0 + 1200, 900, 0);
        vm.assertEq(o.breaches & B_SINGLE, B_SINGLE, "device 0's run was not broken by device 1");
    }

    /// @notice The cumulative budget is each device's own: two devices out of range for less than the budget
    /// each (but more in all) raise nothing; once one device's own time reaches it, that device's reading does.
    function test_cumulative_isJudgedPerDevice() public {
        IShipments.TemperatureProfile memory p = _vaccineNoAdaptation();
        p.maxCumulativeExcursionSeconds = 1500; // 5 intervals
        World memory w = _twoDevices(p, 300);
        (uint256 b0, ) = _feedDevice(w, 0, 900, 4, B_CUMULATIVE); // 1200 s
        (uint256 b1, ) = _feedDevice(w, 1, 900, 4, B_CUMULATIVE); // 1200 s
        vm.assertEq((b0 | b1) & B_CUMULATIVE, 0, "each device under its budget");
        vm.assertEq(w.condition.cumulativeExcursionSeconds, 2400, "2400 s in all, above 1500 s");
        vm.assertEq(w.condition.breachFlags & B_CUMULATIVE, 0, "no cumulative breach");
        vm.assertEq(w.stored[0].evidence.cumulativeExcursionSeconds, 1200, "device 0's own");
        vm.assertEq(w.stored[1].evidence.cumulativeExcursionSeconds, 1200, "device 1's own");
        // In range for a while: runs end, cumulative time stays.
        _feedDevice(w, 1, 500, 2, 0);
        (uint256 b, uint256 at) = _feedDevice(w, 1, 900, 1, B_CUMULATIVE);
        vm.assertEq(at, 1, "device 1 reaches 1500 s of its own");
        vm.assertEq(b, B_CUMULATIVE, "only the cumulative breach");
        vm.assertEq(w.stored[0].evidence.cumulativeExcursionSeconds, 1200, "device 0 untouched");
        (b, ) = _feedDevice(w, 0, 500, 1, 0);
        vm.assertEq(b, 0, "device 0 in range: nothing");
    }

    /// @notice The MKT limit is judged on each device's own readings (once they cover enough time); the status
    /// flag MKT_ABOVE_LIMIT is the pooled MKT of all devices.
    function test_mkt_isJudgedPerDevice() public {
        IShipments.TemperatureProfile memory p = _vaccineNoAdaptation();
        p.maxSingleExcursionSeconds = 0;
        p.maxCumulativeExcursionSeconds = 0;
        p.mktMinCoverageSeconds = 3600;
        World memory w = _twoDevices(p, 600);
        // Device 1 cold for 2 h (2.0 C), device 0 at 9.0 C: above the 8.0 C limit on its own.
        _feedDevice(w, 1, 200, 12, 0);
        (uint256 b, uint256 at) = _feedDevice(w, 0, 900, 6, B_MKT);
        vm.assertEq(at, 6, "device 0's own MKT judged once it covers 3600 s");
        vm.assertEq(b & B_MKT, B_MKT, "device 0 above");
        vm.assertEq(w.condition.statusFlags & TemperatureRules.MKT_ABOVE_LIMIT, 0, "pooled MKT below the limit");
        // Device 1's reading at the limit raises nothing: its own MKT is far below.
        (b, ) = _feedDevice(w, 1, 800, 1, 0);
        vm.assertEq(b & B_MKT, 0, "device 1 below");

        // The pooled MKT above the limit while no device covers enough time on its own: the flag, no breach.
        World memory v = _twoDevices(p, 600);
        (uint256 v0, ) = _feedDevice(v, 0, 1200, 3, 0);
        (uint256 v1, ) = _feedDevice(v, 1, 1200, 3, 0);
        vm.assertEq((v0 | v1) & B_MKT, 0, "1800 s each: not judged");
        vm.assertEq(v.condition.mktSeconds, 3600, "3600 s pooled");
        vm.assertEq(v.condition.statusFlags & TemperatureRules.MKT_ABOVE_LIMIT, 8, "pooled MKT above the limit");
        vm.assertEq(v.condition.breachFlags & B_MKT, 0, "no MKT breach");
    }

    /// @notice longestExcursionSeconds is the longest run of any device so far; a run that ends keeps it, a
    /// shorter one does not lower it, a longer one of another device raises it.
    function test_longestExcursion_isTheLongestRunOfAnyDevice() public {
        IShipments.TemperatureProfile memory p = _vaccineNoAdaptation();
        p.maxSingleExcursionSeconds = 0;
        p.maxCumulativeExcursionSeconds = 0;
        World memory w = _twoDevices(p, 300);
        _feedDevice(w, 0, 900, 3, 0);
        vm.assertEq(w.condition.longestExcursionSeconds, 900, "device 0: 3 intervals");
        _feedDevice(w, 0, 500, 1, 0);
        _feedDevice(w, 0, 900, 1, 0);
        vm.assertEq(w.condition.longestExcursionSeconds, 900, "a shorter run leaves it");
        _feedDevice(w, 1, 100, 5, 0);
        vm.assertEq(w.condition.longestExcursionSeconds, 1500, "device 1: 5 intervals");
        _feedDevice(w, 0, 900, 3, 0);
        vm.assertEq(w.condition.longestExcursionSeconds, 1500, "device 0's run of 4 intervals is shorter");
        _feedDevice(w, 0, 900, 2, 0);
        vm.assertEq(w.condition.longestExcursionSeconds, 1800, "device 0's run reaches 6 intervals");
        vm.assertEq(w.stored[0].track.excursionStartedAt, T0 + 1200, "from the start of the run");
    }

    /// @notice excursionDevices and freezeDevices count the devices whose latest evaluated reading is out of range
    /// / at or below freeze, up and down, and the status flags follow them.
    function test_deviceCounts_goUpAndDown() public {
        World memory w = _newWorld(_vaccineNoAdaptation(), 3);
        for (uint256 d = 0; d < 3; ++d) w.devices[d].intervalSeconds = 300;
        _feedDevice(w, 0, 900, 1, 0);
        _counts(w, 1, 0, 2);
        _feedDevice(w, 1, -100, 1, 0); // out of range and freezing
        _counts(w, 2, 1, 2 | 4);
        _feedDevice(w, 2, -100, 1, 0);
        _counts(w, 3, 2, 2 | 4);
        _feedDevice(w, 1, 100, 1, 0); // still out of range, no longer freezing
        _counts(w, 3, 1, 2 | 4);
        _feedDevice(w, 0, 900, 1, 0); // its run goes on: counted once
        _counts(w, 3, 1, 2 | 4);
        _feedDevice(w, 2, 500, 1, 0);
        _counts(w, 2, 0, 2);
        _feedDevice(w, 0, 500, 1, 0);
        _feedDevice(w, 1, 500, 1, 0);
        _counts(w, 0, 0, 0);
        _feedDevice(w, 2, -100, 1, 0);
        _counts(w, 1, 1, 2 | 4);
    }

    function _counts(World memory w, uint256 excursion, uint256 freeze, uint256 flags) private pure {
        vm.assertEq(w.condition.excursionDevices, excursion, "excursionDevices");
        vm.assertEq(w.condition.freezeDevices, freeze, "freezeDevices");
        uint256 mask = TemperatureRules.EXCURSION_ACTIVE | TemperatureRules.FREEZE_ACTIVE;
        vm.assertEq(w.condition.statusFlags & mask, flags, "status flags");
    }

    // ================================================================ statusOf

    /// @notice statusOf keeps HAS_TEMPERATURE (and no other stored bit), sets EXCURSION_ACTIVE / FREEZE_ACTIVE iff
    /// some device is counted, and MKT_ABOVE_LIMIT iff the pooled sums cover the minimum and exceed the limit
    /// (strictly); never with MKT off.
    function test_statusOf() public {
        RulesInput memory input = _scenario(vaccineProfile(), 300).rules; // MKT on: 8.0 C over 24 h
        uint256 limit = input.mktLimitFactor;
        TemperatureRules.ShipmentState memory st;
        vm.assertEq(harness.statusOf(input, st), 0, "empty");
        st.statusFlags = 1 | 2 | 4 | 8;
        vm.assertEq(harness.statusOf(input, st), 1, "only HAS_TEMPERATURE is taken from the stored flags");
        st.statusFlags = 2 | 4 | 8;
        vm.assertEq(harness.statusOf(input, st), 0, "stale bits dropped");
        st.excursionDevices = 1;
        vm.assertEq(harness.statusOf(input, st), 2, "excursion");
        st.freezeDevices = 3;
        vm.assertEq(harness.statusOf(input, st), 2 | 4, "freeze");
        st.excursionDevices = 0;
        vm.assertEq(harness.statusOf(input, st), 4, "freeze only");
        st.freezeDevices = 0;

        st.mktSeconds = 24 * 3600;
        st.mktWeightedSum = limit * st.mktSeconds;
        vm.assertEq(harness.statusOf(input, st), 0, "at the limit: not above");
        st.mktWeightedSum += 1;
        vm.assertEq(harness.statusOf(input, st), 8, "one above");
        st.mktSeconds = 24 * 3600 - 1;
        st.mktWeightedSum = limit * st.mktSeconds * 2;
        vm.assertEq(harness.statusOf(input, st), 0, "not covered");
        input.profile.mktMinCoverageSeconds = 0;
        vm.assertEq(harness.statusOf(input, st), 8, "no minimum coverage");
        input.profile.mktEnabled = false;
        vm.assertEq(harness.statusOf(input, st), 0, "MKT off");
    }
}
