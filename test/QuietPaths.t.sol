// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IReadingsInbox} from "../contracts/interfaces/IReadingsInbox.sol";
import {IShipments} from "../contracts/interfaces/IShipments.sol";
import {MktLib} from "../contracts/libraries/MktLib.sol";
import {TemperatureRules} from "../contracts/libraries/TemperatureRules.sol";

import {BatchEncoder} from "./utils/BatchEncoder.sol";
import {ColdChainFixture} from "./utils/ColdChainFixture.sol";
import {Prng} from "./utils/Prng.sol";
import {vaccineProfile} from "./utils/Profiles.sol";

/// @title QuietPathsTest
/// @notice Holds the inbox's hand-written fast paths (`_quietSamples`, `_quietReadings`) to the rules engine: a
/// device sends random readings, mostly quiet with every kind of non-quiet one mixed in (out of range, freeze,
/// absolute limits, fault and other flags, gaps, late arrivals, readings in the adaptation period, MKT above
/// its limit), in random READINGS and WINDOW items. The same readings, in the same order, go through
/// {TemperatureRules.apply_} directly; after every batch each field of the shipment's condition and of the
/// device's track must be equal, and so must the liability charged to the custodian.
contract QuietPathsTest is ColdChainFixture {
    using Prng for Prng.Rng;

    uint64 private constant DEVICE = 77;
    uint32 private constant INTERVAL = 300;

    /// @dev The reference: the engine's state for the same readings.
    struct Reference {
        TemperatureRules.Rules rules;
        TemperatureRules.ShipmentState state;
        TemperatureRules.DeviceState device;
        uint256 excursionSeconds;
    }

    IShipments.TemperatureProfile private _stored;
    uint256 private _deviceKey;
    uint32 private _sequence;
    uint256 private _clock;

    function testFuzz_fastPathsMatchTheRulesEngine(uint256 seed) public {
        _check(seed);
    }

    /// @notice Fixed seeds, one per profile, so a failure replays without the fuzzer.
    function test_fastPathsMatchTheRulesEngine_replay() public {
        _check(1);
        _check(2);
        _check(3);
        _check(4);
        _check(5);
    }

    /// @notice Random profiles over the whole space a profile may name (-200 .. +80 degrees C: cryogenic, dry
    /// ice, freezer, refrigerated, room temperature, anything between), one seed each, 200 profiles in all: the
    /// fast paths must agree with the engine on every one (they once read a negative quiet-range width of a
    /// cryogenic profile as a huge one, accepted a thaw and ran out of gas in the MKT lookup).
    function test_fastPathsMatchTheRulesEngine_wholeProfileSpace() public {
        for (uint256 i = 0; i < 200; ++i) _check(10 * i + 5 + (i % 5));
    }

    /// @notice Found by the fuzzer (seed 7049): with the gap check off, a late reading passed the fast path's
    /// "after the latest, within the gap limit" test (at - last - 1 wrapped around below not(0)) and moved
    /// the device's latest reading back in time.
    function test_lateReadingWithTheGapCheckOffTakesTheFullPath() public {
        _check(7049);
    }

    // ================================================================ the check

    function _check(uint256 seed) private {
        deploySuite();
        Prng.Rng memory rng = Prng.init(seed);
        IShipments.TemperatureProfile memory p = seed % 10 < 5 ? _profile(seed % 5) : _randomProfile(rng);
        uint32 profileId = coldChain.createProfile(p);
        _deviceKey = keyOf("quiet device");
        registerDevice(DEVICE, INTERVAL, _deviceKey);
        uint64 shipmentId = _startShipment(profileId);
        Reference memory ref = _reference(p, vm.getBlockTimestamp());
        _sequence = 0;
        _clock = vm.getBlockTimestamp() + rng.between(0, 2) * 300; // some readings inside the adaptation period

        uint256 batches = rng.between(3, 5);
        for (uint256 i = 0; i < batches; ++i) {
            bytes memory items;
            uint256 itemCount = rng.between(1, 4);
            for (uint256 j = 0; j < itemCount; ++j) {
                items = bytes.concat(items, rng.chance(50) ? _window(rng, ref) : _readings(rng, ref));
            }
            vm.warp(_clock + 600);
            vm.prank(relayer);
            (, uint256 skipped) = coldChain.submitReadings(BatchEncoder.batch(items));
            vm.assertEq(skipped, 0, "every generated reading is valid");
            _assertMatches(shipmentId, ref);
        }
    }

    function _assertMatches(uint64 shipmentId, Reference memory ref) private view {
        IReadingsInbox.Condition memory c = coldChain.condition(shipmentId);
        TemperatureRules.ShipmentState memory s = ref.state;
        vm.assertEq(c.readingCount, s.readingCount, "readingCount");
        vm.assertEq(c.minCentiC, s.minCentiC, "minCentiC");
        vm.assertEq(c.maxCentiC, s.maxCentiC, "maxCentiC");
        vm.assertEq(c.lastObservedAt, s.lastObservedAt, "lastObservedAt");
        vm.assertEq(c.cumulativeExcursionSeconds, s.cumulativeExcursionSeconds, "cumulativeExcursionSeconds");
        vm.assertEq(c.currentExcursionSeconds, s.currentExcursionSeconds, "currentExcursionSeconds");
        vm.assertEq(c.statusFlags, s.statusFlags, "statusFlags");
        vm.assertEq(c.breachFlags, s.breachFlags, "breachFlags");
        vm.assertEq(uint256(c.firstBreach), s.firstBreach, "firstBreach");
        vm.assertEq(c.mktWeightedSum, s.mktWeightedSum, "mktWeightedSum");
        vm.assertEq(c.mktSeconds, s.mktSeconds, "mktSeconds");
        IReadingsInbox.DeviceTrack memory t = coldChain.deviceTrack(DEVICE);
        vm.assertEq(t.lastObservedAt, ref.device.lastObservedAt, "track.lastObservedAt");
        vm.assertEq(t.excursionStartedAt, ref.device.excursionStartedAt, "track.excursionStartedAt");
        vm.assertEq(t.freezeStartedAt, ref.device.freezeStartedAt, "track.freezeStartedAt");
        vm.assertEq(lens.excursionSecondsOf(shipmentId, shipper), ref.excursionSeconds, "liability");
    }

    // ================================================================ items

    /// @dev A READINGS item of 1..12 readings; times mostly one interval apart, some gaps and late ones.
    function _readings(Prng.Rng memory rng, Reference memory ref) private returns (bytes memory) {
        uint256 n = rng.between(1, 12);
        bytes memory body;
        for (uint256 i = 0; i < n; ++i) {
            BatchEncoder.Reading memory r;
            r.deviceId = DEVICE;
            r.sequence = ++_sequence;
            r.observedAt = uint40(_nextTime(rng, ref));
            (r.tempCentiC, r.flags) = _sample(rng);
            _applyReference(ref, r.observedAt, r.tempCentiC, r.flags);
            body = bytes.concat(body, BatchEncoder.signReading(domain, _deviceKey, r));
        }
        return BatchEncoder.readingsItem(DEVICE, uint16(n), body);
    }

    /// @dev A WINDOW item of 1..40 samples, starting after a random gap (or late, before the latest reading).
    function _window(Prng.Rng memory rng, Reference memory ref) private returns (bytes memory) {
        uint256 n = rng.between(1, 40);
        uint256 first = _nextTime(rng, ref);
        uint32 firstSequence = _sequence + 1;
        bytes memory samples;
        for (uint256 i = 0; i < n; ++i) {
            (int16 temp, uint8 flags) = _sample(rng);
            samples = bytes.concat(samples, abi.encodePacked(temp, flags));
            _applyReference(ref, first + i * INTERVAL, temp, flags);
        }
        _sequence += uint32(n);
        uint256 last = first + (n - 1) * INTERVAL;
        if (last > _clock) _clock = last;
        return
            BatchEncoder.signedWindowItem(domain, _deviceKey, DEVICE, firstSequence, uint40(first), INTERVAL, samples);
    }

    /// @dev The next observation time: usually one interval after the clock, sometimes a gap or a late one.
    function _nextTime(Prng.Rng memory rng, Reference memory ref) private returns (uint256 at) {
        uint256 roll = rng.between(0, 99);
        if (roll < 8) {
            at = _clock + INTERVAL * rng.between(2, 6); // a gap, maybe longer than maxGapIntervals
        } else if (roll < 14 && _clock > ref.rules.startedAt + 3 * INTERVAL) {
            at = _clock - INTERVAL * rng.between(1, 3) + 1; // late: before the device's latest reading
            return at;
        } else {
            at = _clock + INTERVAL;
        }
        _clock = at;
    }

    /// @dev Mostly quiet (inside the profile's range, no flag); each kind of non-quiet sample now and then,
    /// placed relative to the stored profile's limits.
    function _sample(Prng.Rng memory rng) private view returns (int16 temp, uint8 flags) {
        IShipments.TemperatureProfile memory p = _stored;
        int256 lo = p.minCentiC;
        int256 hi = p.maxCentiC;
        int256 t = rng.betweenInt(lo, hi);
        uint256 roll = rng.between(0, 99);
        if (roll < 6)
            t = _pick(rng, hi + 1, _min(p.absoluteMaxCentiC, hi + 500)); // out of range, above
        else if (roll < 8)
            t = _pick(rng, _max(p.absoluteMinCentiC, lo - 500), lo - 1); // below the range
        else if (roll < 10)
            t = _pick(rng, _max(p.absoluteMinCentiC, int256(p.freezeCentiC) - 300), p.freezeCentiC); // freezing
        else if (roll < 11)
            t = _min(int256(p.absoluteMaxCentiC) + 1, type(int16).max); // above the absolute maximum
        else if (roll < 12)
            t = lo; // exactly the range minimum
        else if (roll < 13)
            t = hi; // exactly the range maximum
        else if (roll < 14)
            t = _max(int256(p.absoluteMinCentiC) - 1, type(int16).min); // below the absolute minimum
        else if (roll < 16)
            flags = 0x01; // sensor fault
        else if (roll < 17)
            flags = 0x02; // low battery: not a fault in these profiles
        else if (roll < 18) flags = 0x04; // tamper
        temp = int16(t);
    }

    /// @dev A value in [a, b], or a when the interval is empty (the profile leaves no room there).
    function _pick(Prng.Rng memory rng, int256 a, int256 b) private pure returns (int256) {
        return b < a ? a : rng.betweenInt(a, b);
    }

    function _min(int256 a, int256 b) private pure returns (int256) {
        return a < b ? a : b;
    }

    function _max(int256 a, int256 b) private pure returns (int256) {
        return a > b ? a : b;
    }

    // ================================================================ reference

    function _reference(
        IShipments.TemperatureProfile memory p,
        uint256 startedAt
    ) private returns (Reference memory ref) {
        _stored = p;
        uint256 factor = p.mktEnabled ? MktLib.factorOf(address(mktTable), p.mktLimitCentiC) : 0;
        TemperatureRules.prepare(ref.rules, _stored, factor, startedAt);
    }

    function _applyReference(Reference memory ref, uint256 at, int256 temp, uint256 flags) private view {
        // Breaches are recorded in ref.state by apply_ (flags and the first one).
        (, uint256 excursion) = TemperatureRules.apply_(
            ref.rules,
            ref.state,
            ref.device,
            at,
            temp,
            flags,
            INTERVAL,
            MktLib.factorOf(address(mktTable), temp)
        );
        ref.excursionSeconds += excursion;
    }

    // ================================================================ set-up

    function _startShipment(uint32 profileId) private returns (uint64 shipmentId) {
        uint64[] memory ids = new uint64[](1);
        ids[0] = DEVICE;
        vm.prank(shipper);
        shipmentId = coldChain.createShipment(
            IShipments.ShipmentParams({
                receiver: receiver,
                owner: goodsOwner,
                profileId: profileId,
                deviceIds: ids,
                plannedStartAt: uint40(vm.getBlockTimestamp()),
                externalRef: bytes32(0)
            })
        );
        vm.prank(shipper);
        coldChain.startShipment(shipmentId);
    }

    /// @dev 0: the vaccine profile; 1: a tight MKT limit judged after an hour (MKT breaches and recoveries
    /// inside runs of quiet readings); 2: freeze alarm and missing-data check off, no fault mask; 3: a cumulative
    /// budget of six intervals (window excursions reach it inside the fast loop); 4: one interval out of range is
    /// already a single-excursion breach (the loop takes excursions only once that breach is recorded).
    function _profile(uint256 which) private pure returns (IShipments.TemperatureProfile memory p) {
        p = vaccineProfile();
        if (which == 1) {
            p.mktLimitCentiC = 500;
            p.mktMinCoverageSeconds = 3600;
        } else if (which == 3) {
            p.maxCumulativeExcursionSeconds = 6 * INTERVAL;
        } else if (which == 4) {
            p.maxSingleExcursionSeconds = INTERVAL;
            p.maxCumulativeExcursionSeconds = 12 * INTERVAL;
        } else if (which == 2) {
            p.maxFreezeSeconds = 0;
            p.maxGapIntervals = 0;
            p.faultFlagMask = 0;
            p.mktEnabled = false;
        }
    }

    /// @dev A random valid profile: a range of 2..40 degrees somewhere in -200 .. +80 degrees C (a class first:
    /// cryogenic, dry ice, freezer, refrigerated, room temperature, or anywhere), absolute limits outside it
    /// (sometimes the int16 extremes, i.e. off), a freeze alarm below the maximum or off, random durations, MKT on
    /// (with a limit the table holds) or off.
    function _randomProfile(Prng.Rng memory rng) private pure returns (IShipments.TemperatureProfile memory p) {
        uint256 class = rng.between(0, 5);
        int256 lo = [int256(-19_600), -8_000, -2_500, 200, 1_500, -20_000][class];
        int256 top = [int256(-12_000), -6_000, -1_000, 800, 3_000, 7_800][class];
        int256 min = rng.betweenInt(lo, top - 200);
        int256 max = _min(8_000, min + rng.betweenInt(200, 4_000));
        p.minCentiC = int16(min);
        p.maxCentiC = int16(max);
        p.absoluteMinCentiC = rng.chance(20) ? type(int16).min : int16(min - rng.betweenInt(0, 1_000));
        p.absoluteMaxCentiC =
            rng.chance(20) ? type(int16).max : int16(_min(type(int16).max, max + rng.betweenInt(0, 1_500)));
        if (rng.chance(70)) {
            p.freezeCentiC = int16(_max(-20_000, max - rng.betweenInt(1, 2_000)));
            p.maxFreezeSeconds = uint32(rng.between(1, 8) * INTERVAL);
        }
        p.maxSingleExcursionSeconds = rng.chance(15) ? 0 : uint32(rng.between(1, 12) * INTERVAL);
        p.maxCumulativeExcursionSeconds = rng.chance(15) ? 0 : uint32(rng.between(1, 30) * INTERVAL);
        p.adaptationSeconds = uint32(rng.between(0, 2) * INTERVAL);
        p.maxGapIntervals = uint8(rng.between(0, 4));
        p.faultFlagMask = rng.chance(50) ? 0x05 : 0;
        if (rng.chance(50)) {
            p.mktEnabled = true;
            p.mktLimitCentiC = int16(rng.betweenInt(-800, 800) * 10);
            p.mktMinCoverageSeconds = uint32(rng.between(0, 12) * INTERVAL);
        }
    }
}
