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
import {Vm} from "./utils/Vm.sol";

/// @title QuietPathsTest
/// @notice Holds the inbox's hand-written fast paths (`_quietSamples`, `_quietReadings`) to the rules engine: two
/// devices of one shipment (intervals 300 s and 600 s) send random chains of readings, mostly quiet with every
/// kind of non-quiet one mixed in (out of range, freeze, absolute limits, fault and other flags, gaps, readings in
/// the adaptation period, MKT above its limit), in random READINGS and WINDOW items of either device. Each reading
/// names its device's previous one (a window the reading before its first sample), as protocol v2 requires; in
/// between come attempts that do not continue the chain (a recorded reading relayed again, one naming a
/// predecessor not recorded yet, one naming an older one), which must be skipped (DuplicateSequence, SequenceGap,
/// StaleSequence) without touching the state. The valid readings, in the same order, go through
/// {TemperatureRules.apply_} directly; after every batch each field of the shipment's condition (the status flags
/// as {TemperatureRules.statusOf} gives them), of each device's track and of each device's evidence must be
/// equal, and so must the liability charged to the custodian; every batch must emit exactly the BreachRecorded
/// (once per device and kind: one custody period here) and ReadingSkipped events the reference predicts, in order.
contract QuietPathsTest is ColdChainFixture {
    using Prng for Prng.Rng;

    uint64 private constant DEVICE = 77;
    uint64 private constant DEVICE_2 = 78;
    uint32 private constant INTERVAL = 300;
    uint32 private constant INTERVAL_2 = 600;
    uint256 private constant DEVICES = 2;

    uint256 private constant DUPLICATE = 0;
    uint256 private constant GAP = 1;
    uint256 private constant STALE = 2;

    /// @dev The reference: the engine's state for the same readings.
    struct Reference {
        TemperatureRules.Rules rules;
        TemperatureRules.ShipmentState state;
        TemperatureRules.DeviceState[DEVICES] devices;
        uint256[DEVICES] announced;
        uint256 excursionSeconds;
    }

    /// @dev A device's side: its key, its counter, its clock and the reading it took last.
    struct Chain {
        uint64 id;
        uint256 key;
        uint32 interval;
        uint32 sequence;
        uint256 clock;
        uint256 last;
        bytes lastEncoded;
    }

    IShipments.TemperatureProfile private _stored;
    Chain[DEVICES] private _chains;
    /// @dev One event a batch must emit: BreachRecorded (at = observation time) or ReadingSkipped (count).
    struct Expected {
        bool skip;
        uint64 deviceId;
        uint256 sequence;
        uint256 reason;
        uint256 atOrCount;
    }

    /// @dev The events a batch must emit (BreachRecorded and ReadingSkipped), in order.
    Expected[] private _expected;
    uint256 private _expectedSkipped;
    uint256 private _expectedAccepted;
    /// @dev Over a check: attempts that did not continue a chain, and BreachRecorded events seen.
    uint256 private _chainBreaks;
    uint256 private _breachEvents;

    function testFuzz_fastPathsMatchTheRulesEngine(uint256 seed) public {
        _check(seed);
    }

    /// @notice Fixed seeds, one per profile, so a failure replays without the fuzzer.
    function test_fastPathsMatchTheRulesEngine_replay() public {
        for (uint256 seed = 1; seed <= 5; ++seed) this.check(seed);
        vm.assertGt(_chainBreaks, 10, "attempts that do not continue a chain");
        vm.assertGt(_breachEvents, 10, "breaches announced");
    }

    /// @notice Random profiles over the whole space a profile may name (-200 .. +80 degrees C: cryogenic, dry
    /// ice, freezer, refrigerated, room temperature, anything between), one seed each, 200 profiles in all: the
    /// fast paths must agree with the engine on every one (they once read a negative quiet-range width of a
    /// cryogenic profile as a huge one, accepted a thaw and ran out of gas in the MKT lookup).
    function test_fastPathsMatchTheRulesEngine_wholeProfileSpace() public {
        for (uint256 i = 0; i < 200; ++i) this.check(10 * i + 5 + (i % 5));
    }

    /// @notice One seed's check, as an external call: each runs in fresh memory, so the memory of a test running
    /// many of them does not pile up.
    function check(uint256 seed) external {
        _check(seed);
    }

    /// @notice Found by the fuzzer (seed 7049) in protocol v1: with the gap check off, a late reading passed the
    /// fast path's "after the latest, within the gap limit" test (at - last - 1 wrapped around below not(0)) and
    /// moved the device's latest reading back in time. In v2 such a reading is a duplicate; the seed stays.
    function test_lateReadingWithTheGapCheckOffTakesTheFullPath() public {
        _check(7049);
    }

    /// @notice The same case, pinned: gap check off (profile 2), quiet readings, then a reading observed before
    /// the latest one (relayed again, and one signed anew naming the latest as its predecessor) amid quiet ones.
    /// Both are skipped as duplicates, the chain goes on after them and the device's latest time never goes back.
    function test_readingBeforeTheLatestWithTheGapCheckOffIsADuplicate() public {
        deploySuite();
        uint64 shipmentId = _setUp(_profile(2));
        Reference memory ref = _reference(_profile(2), vm.getBlockTimestamp());
        Chain storage a = _chains[0];
        uint256 start = vm.getBlockTimestamp();
        bytes memory body;
        body = bytes.concat(body, _valid(ref, 0, start + 300, 500, 0));
        body = bytes.concat(body, _valid(ref, 0, start + 600, 510, 0));
        bytes memory first = a.lastEncoded;
        body = bytes.concat(body, _valid(ref, 0, start + 900, 520, 0));
        body = bytes.concat(body, first); // relayed again
        _expectSkip(0, 2, 1, IReadingsInbox.SkipReason.DuplicateSequence);
        // Observed before the latest, naming an older predecessor: a second history.
        body = bytes.concat(body, _attempt(0, ++a.sequence, start + 800, start + 600, 530, DUPLICATE));
        body = bytes.concat(body, _valid(ref, 0, start + 1200, 540, 0));
        _submit(shipmentId, ref, BatchEncoder.readingsItem(DEVICE, 6, body));
        vm.assertEq(coldChain.deviceTrack(DEVICE).lastObservedAt, start + 1200, "latest");
    }

    // ================================================================ the check

    function _check(uint256 seed) private {
        deploySuite();
        Prng.Rng memory rng = Prng.init(seed);
        IShipments.TemperatureProfile memory p = seed % 10 < 5 ? _profile(seed % 5) : _randomProfile(rng);
        uint64 shipmentId = _setUp(p);
        Reference memory ref = _reference(p, vm.getBlockTimestamp());
        for (uint256 d = 0; d < DEVICES; ++d) {
            // Some readings inside the adaptation period.
            _chains[d].clock = vm.getBlockTimestamp() + rng.between(0, 2) * 300;
            // The predecessor of a device's first reading: none (a new device), or one taken before the start.
            _chains[d].last = rng.chance(50) ? 0 : vm.getBlockTimestamp() - rng.between(1, 3600);
        }

        uint256 batches = rng.between(3, 5);
        for (uint256 i = 0; i < batches; ++i) {
            bytes memory items;
            uint256 itemCount = rng.between(1, 4);
            for (uint256 j = 0; j < itemCount; ++j) {
                uint256 d = rng.next() % DEVICES;
                items = bytes.concat(items, rng.chance(50) ? _window(rng, ref, d) : _readings(rng, ref, d));
            }
            _submit(shipmentId, ref, items);
        }
    }

    /// @dev Submits `items` and holds the inbox to the reference: counts, events, state.
    function _submit(uint64 shipmentId, Reference memory ref, bytes memory items) private {
        vm.warp(_latestClock() + 600);
        vm.recordLogs();
        vm.prank(relayer);
        (uint256 accepted, uint256 skipped) = coldChain.submitReadings(BatchEncoder.batch(items));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(accepted, _expectedAccepted, "accepted: every reading continuing its chain");
        vm.assertEq(skipped, _expectedSkipped, "skipped: exactly the attempts that do not");
        _assertEvents(logs);
        _assertMatches(shipmentId, ref);
        delete _expected;
        (_expectedAccepted, _expectedSkipped) = (0, 0);
    }

    function _assertEvents(Vm.Log[] memory logs) private {
        uint256 j;
        for (uint256 i = 0; i < logs.length; ++i) {
            Vm.Log memory log = logs[i];
            Expected memory got;
            if (log.topics[0] == IReadingsInbox.BreachRecorded.selector) {
                (IReadingsInbox.BreachReason reason, uint32 period, uint64 deviceId, uint32 sequence, uint40 at) = abi
                    .decode(log.data, (IReadingsInbox.BreachReason, uint32, uint64, uint32, uint40));
                vm.assertEq(period, 0, "one custody period");
                vm.assertEq(log.topics[2], bytes32(uint256(uint160(shipper))), "charged to the shipper");
                got = Expected(false, deviceId, sequence, uint256(reason), at);
                ++_breachEvents;
            } else if (log.topics[0] == IReadingsInbox.ReadingSkipped.selector) {
                (uint32 sequence, uint16 count, IReadingsInbox.SkipReason reason) = abi.decode(
                    log.data,
                    (uint32, uint16, IReadingsInbox.SkipReason)
                );
                got = Expected(true, uint64(uint256(log.topics[1])), sequence, uint256(reason), count);
            } else {
                continue;
            }
            vm.assertTrue(j < _expected.length, "an event the reference does not predict");
            Expected memory want = _expected[j++];
            vm.assertEq(got.skip, want.skip, "BreachRecorded / ReadingSkipped, in order");
            vm.assertEq(got.deviceId, want.deviceId, "event: deviceId");
            vm.assertEq(got.sequence, want.sequence, "event: sequence");
            vm.assertEq(got.reason, want.reason, "event: reason");
            vm.assertEq(got.atOrCount, want.atOrCount, "event: observedAt / count");
        }
        vm.assertEq(j, _expected.length, "every predicted event");
    }

    function _assertMatches(uint64 shipmentId, Reference memory ref) private view {
        IReadingsInbox.Condition memory c = coldChain.condition(shipmentId);
        TemperatureRules.ShipmentState memory s = ref.state;
        vm.assertEq(c.readingCount, s.readingCount, "readingCount");
        vm.assertEq(c.minCentiC, s.minCentiC, "minCentiC");
        vm.assertEq(c.maxCentiC, s.maxCentiC, "maxCentiC");
        vm.assertEq(c.lastObservedAt, s.lastObservedAt, "lastObservedAt");
        vm.assertEq(c.cumulativeExcursionSeconds, s.cumulativeExcursionSeconds, "cumulativeExcursionSeconds");
        vm.assertEq(c.longestExcursionSeconds, s.longestExcursionSeconds, "longestExcursionSeconds");
        vm.assertEq(c.statusFlags, TemperatureRules.statusOf(ref.rules, s), "statusFlags");
        vm.assertEq(c.breachFlags, s.breachFlags, "breachFlags");
        vm.assertEq(uint256(c.firstBreach), s.firstBreach, "firstBreach");
        vm.assertEq(c.excursionDevices, s.excursionDevices, "excursionDevices");
        vm.assertEq(c.freezeDevices, s.freezeDevices, "freezeDevices");
        vm.assertEq(c.firstBreachAt, s.firstBreachAt, "firstBreachAt");
        vm.assertEq(c.mktWeightedSum, s.mktWeightedSum, "mktWeightedSum");
        vm.assertEq(c.mktSeconds, s.mktSeconds, "mktSeconds");
        for (uint256 d = 0; d < DEVICES; ++d) {
            uint64 id = _chains[d].id;
            TemperatureRules.DeviceState memory r = ref.devices[d];
            IReadingsInbox.DeviceTrack memory t = coldChain.deviceTrack(id);
            vm.assertEq(t.shipmentId, shipmentId, "track.shipmentId");
            vm.assertEq(t.lastObservedAt, r.lastObservedAt, "track.lastObservedAt");
            vm.assertEq(t.excursionStartedAt, r.excursionStartedAt, "track.excursionStartedAt");
            vm.assertEq(t.freezeStartedAt, r.freezeStartedAt, "track.freezeStartedAt");
            IReadingsInbox.DeviceEvidence memory e = coldChain.deviceEvidence(shipmentId, id);
            vm.assertEq(e.mktWeightedSum, r.mktWeightedSum, "evidence.mktWeightedSum");
            vm.assertEq(e.mktSeconds, r.mktSeconds, "evidence.mktSeconds");
            vm.assertEq(e.cumulativeExcursionSeconds, r.cumulativeExcursionSeconds, "evidence.cumulative");
            vm.assertEq(e.breachPeriod, 0, "evidence.breachPeriod");
            vm.assertEq(e.breachFlags, ref.announced[d], "evidence.breachFlags");
            if (r.lastObservedAt != 0) {
                vm.assertTrue(coldChain.isRecorded(id, uint40(r.lastObservedAt)), "latest recorded");
                vm.assertFalse(coldChain.isRecorded(id, uint40(r.lastObservedAt + 1)), "after the latest");
                vm.assertTrue(coldChain.isRecorded(id, uint40(ref.rules.startedAt)), "the start");
                vm.assertFalse(coldChain.isRecorded(id, uint40(ref.rules.startedAt - 1)), "before the start");
            }
        }
        IShipments.CustodyPeriod[] memory periods = coldChain.custodyHistory(shipmentId);
        vm.assertEq(periods[0].breachFlags, s.breachFlags, "custody period breachFlags");
        vm.assertEq(lens.excursionSecondsOf(shipmentId, shipper), ref.excursionSeconds, "liability");
    }

    // ================================================================ items

    /// @dev A READINGS item of 1..12 readings of device `d`, continuing its chain; now and then an attempt that
    /// does not continue it in between.
    function _readings(Prng.Rng memory rng, Reference memory ref, uint256 d) private returns (bytes memory) {
        Chain storage ch = _chains[d];
        uint256 n = rng.between(1, 12);
        bytes memory body;
        for (uint256 i = 0; i < n; ++i) {
            if (ref.devices[d].lastObservedAt != 0 && rng.chance(12)) {
                body = bytes.concat(body, _breakChain(rng, ref, d));
                continue;
            }
            uint256 at = _nextTime(rng, ref, d);
            (int16 temp, uint8 flags) = _sample(rng);
            body = bytes.concat(body, _valid(ref, d, at, temp, flags));
        }
        return BatchEncoder.readingsItem(ch.id, uint16(n), body);
    }

    /// @dev A signed reading of device `d` continuing its chain, applied to the reference.
    function _valid(
        Reference memory ref,
        uint256 d,
        uint256 at,
        int16 temp,
        uint8 flags
    ) private returns (bytes memory encoded) {
        Chain storage ch = _chains[d];
        BatchEncoder.Reading memory r = BatchEncoder.Reading({
            deviceId: ch.id,
            sequence: ++ch.sequence,
            observedAt: uint40(at),
            tempCentiC: temp,
            flags: flags,
            previousObservedAt: uint40(ch.last)
        });
        ch.last = at;
        if (at > ch.clock) ch.clock = at;
        _applyReference(ref, d, r.sequence, at, temp, flags);
        encoded = BatchEncoder.signReading(domain, ch.key, r);
        ch.lastEncoded = encoded;
        ++_expectedAccepted;
    }

    /// @dev An attempt of device `d` that does not continue its chain (the device has a reading recorded): its
    /// latest reading relayed again, a reading naming a predecessor after the latest (not recorded), or one naming
    /// a predecessor before the latest (a second history).
    function _breakChain(Prng.Rng memory rng, Reference memory ref, uint256 d) private returns (bytes memory) {
        Chain storage ch = _chains[d];
        uint256 last = ref.devices[d].lastObservedAt;
        uint256 kind = rng.next() % 3;
        (int16 temp, ) = _sample(rng);
        if (kind == DUPLICATE && ch.lastEncoded.length != 0) {
            (, , uint256 sequence) = _recordedHead(ch.lastEncoded);
            _expectSkip(d, sequence, 1, IReadingsInbox.SkipReason.DuplicateSequence);
            return ch.lastEncoded;
        }
        if (kind == GAP) return _attempt(d, ++ch.sequence, last + 2, last + 1, temp, GAP);
        return _attempt(d, ++ch.sequence, last + 1, rng.chance(30) ? 0 : last - 1, temp, STALE);
    }

    /// @dev A signed reading of device `d` at `at` naming `previous`, expected skipped as `kind`.
    function _attempt(
        uint256 d,
        uint32 sequence,
        uint256 at,
        uint256 previous,
        int16 temp,
        uint256 kind
    ) private returns (bytes memory) {
        BatchEncoder.Reading memory r = BatchEncoder.Reading(_chains[d].id, sequence, uint40(at), temp, 0, 0);
        r.previousObservedAt = uint40(previous);
        IReadingsInbox.SkipReason reason =
            kind == DUPLICATE
                ? IReadingsInbox.SkipReason.DuplicateSequence
                : kind == GAP
                    ? IReadingsInbox.SkipReason.SequenceGap
                    : IReadingsInbox.SkipReason.StaleSequence;
        _expectSkip(d, sequence, 1, reason);
        return BatchEncoder.signReading(domain, _chains[d].key, r);
    }

    /// @dev A WINDOW item of 1..40 samples of device `d` continuing its chain (after a random gap); now and then
    /// instead an attempt that does not continue it (its first sample at or before the latest reading, or naming
    /// a predecessor after the latest one), skipped whole.
    function _window(Prng.Rng memory rng, Reference memory ref, uint256 d) private returns (bytes memory) {
        Chain storage ch = _chains[d];
        uint256 last = ref.devices[d].lastObservedAt;
        bool broken = last != 0 && rng.chance(10);
        // A broken window ends at most 900 s after the latest reading: not in the future when submitted.
        uint256 n = rng.between(1, broken ? 1 + 900 / ch.interval : 40);
        // A broken window starts at the latest reading or one interval before (inside the shipment).
        uint256 back = last >= ref.rules.startedAt + ch.interval ? rng.between(0, 1) * ch.interval : 0;
        uint256 first = broken ? last - back : _nextTime(rng, ref, d);
        uint256 previous = broken ? (rng.chance(50) ? last : last - 1) : ch.last;
        uint32 firstSequence = ch.sequence + 1;
        bytes memory samples;
        for (uint256 i = 0; i < n; ++i) {
            (int16 temp, uint8 flags) = _sample(rng);
            samples = bytes.concat(samples, abi.encodePacked(temp, flags));
            if (!broken) _applyReference(ref, d, firstSequence + i, first + i * ch.interval, temp, flags);
        }
        ch.sequence += uint32(n);
        if (broken) {
            _expectSkip(d, firstSequence, n, IReadingsInbox.SkipReason.DuplicateSequence);
        } else {
            ch.last = first + (n - 1) * ch.interval;
            if (ch.last > ch.clock) ch.clock = ch.last;
            _expectedAccepted += n;
        }
        return
            BatchEncoder.signedWindowItem(
                domain,
                ch.key,
                ch.id,
                firstSequence,
                uint40(first),
                ch.interval,
                samples,
                uint40(previous)
            );
    }

    /// @dev The next observation time of device `d`: usually one interval after its clock, sometimes a gap.
    function _nextTime(Prng.Rng memory rng, Reference memory ref, uint256 d) private returns (uint256 at) {
        Chain storage ch = _chains[d];
        if (ref.devices[d].lastObservedAt == 0) return ch.clock; // its first reading in the shipment
        at = ch.clock + (rng.chance(8) ? ch.interval * rng.between(2, 6) : ch.interval);
        ch.clock = at;
    }

    function _latestClock() private view returns (uint256 latest) {
        for (uint256 d = 0; d < DEVICES; ++d) if (_chains[d].clock > latest) latest = _chains[d].clock;
    }

    /// @dev Sequence, observation time and predecessor of an encoded reading (for the skip it is expected to
    /// cause when relayed again).
    function _recordedHead(
        bytes memory encoded
    ) private pure returns (uint256 observedAt, uint256 previous, uint256 sequence) {
        uint256 head;
        assembly ("memory-safe") {
            head := mload(add(encoded, 0x20))
        }
        sequence = head >> 224;
        observedAt = (head >> 184) & 0xffffffffff;
        previous = (head >> 120) & 0xffffffffff;
    }

    function _expectSkip(uint256 d, uint256 sequence, uint256 count, IReadingsInbox.SkipReason reason) private {
        _expected.push(Expected(true, _chains[d].id, sequence, uint256(reason), count));
        _expectedSkipped += count;
        ++_chainBreaks;
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

    /// @dev Applies a reading of device `d` to the reference, and expects a BreachRecorded for each kind it raises
    /// that the device has not announced yet (one custody period: once per device and kind).
    function _applyReference(
        Reference memory ref,
        uint256 d,
        uint256 sequence,
        uint256 at,
        int256 temp,
        uint256 flags
    ) private {
        // Breaches are recorded in ref.state by apply_ (flags and the first one).
        (uint256 breaches, uint256 excursion) = TemperatureRules.apply_(
            ref.rules,
            ref.state,
            ref.devices[d],
            at,
            temp,
            flags,
            _chains[d].interval,
            MktLib.factorOf(address(mktTable), temp)
        );
        ref.excursionSeconds += excursion;
        uint256 fresh = breaches & ~ref.announced[d];
        ref.announced[d] |= breaches;
        for (uint256 reason = 1; reason < 8; ++reason) {
            if (fresh & (1 << reason) != 0) _expected.push(Expected(false, _chains[d].id, sequence, reason, at));
        }
    }

    // ================================================================ set-up

    /// @dev Creates profile `p`, registers both devices and starts a shipment carrying them.
    function _setUp(IShipments.TemperatureProfile memory p) private returns (uint64 shipmentId) {
        uint32 profileId = coldChain.createProfile(p);
        _chains[0] = Chain(DEVICE, keyOf("quiet device"), INTERVAL, 0, vm.getBlockTimestamp(), 0, "");
        _chains[1] = Chain(DEVICE_2, keyOf("quiet device 2"), INTERVAL_2, 0, vm.getBlockTimestamp(), 0, "");
        uint64[] memory ids = new uint64[](DEVICES);
        for (uint256 d = 0; d < DEVICES; ++d) {
            registerDevice(_chains[d].id, _chains[d].interval, _chains[d].key);
            ids[d] = _chains[d].id;
        }
        delete _expected;
        (_expectedAccepted, _expectedSkipped) = (0, 0);
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
