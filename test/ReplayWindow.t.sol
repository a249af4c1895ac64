// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ReplayWindow} from "../contracts/libraries/ReplayWindow.sol";

import {Prng} from "./utils/Prng.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @title ReplayWindowTest
/// @notice ReplayWindow against two reference models written from its NatSpec:
/// - a set model: the accepted ranges kept as a list, `highest` the largest accepted sequence; a range is Stale
///   when its first sequence is `SIZE` or more behind `highest`, Duplicate when it meets an accepted range,
///   Accepted otherwise (and then marked whole). A sequence is used when accepted or older than the window.
/// - a bit model for one call from any state: bit `d` stands for `highest - d`, recomputed sequence by sequence.
contract ReplayWindowTest is TestBase {
    using Prng for Prng.Rng;

    uint256 private constant SIZE = 256;
    uint256 private constant MAX_SEQ = type(uint32).max;
    uint256 private constant MAX_OPS = 64;

    /// @dev The set model: accepted ranges [firsts[i], lasts[i]] for i < n, and the highest accepted sequence.
    struct Model {
        uint256 highest;
        uint256[] firsts;
        uint256[] lasts;
        uint256 n;
    }

    /// @dev A range of sequences to mark.
    struct Op {
        uint256 first;
        uint256 count;
    }

    /// @dev The library's state, threaded through calls as the inbox does.
    struct Lib {
        uint32 highest;
        uint256 bitmap;
    }

    // ================================================================ random sequences of operations

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_tryMark_randomOperationsMatchSetModel(uint256 seed, uint256 ops) public pure {
        _checkRandomOperations(seed, bound(ops, 1, MAX_OPS));
    }

    function test_tryMark_randomOperationsMatchSetModel_replay() public pure {
        uint256[5] memory seeds = [0, 1, 42, type(uint256).max, uint256(keccak256("coldchain"))];
        uint256[5] memory ops = [MAX_OPS, MAX_OPS, 17, MAX_OPS, 1];
        for (uint256 i = 0; i < seeds.length; ++i) _checkRandomOperations(seeds[i], ops[i]);
    }

    function _checkRandomOperations(uint256 seed, uint256 ops) private pure {
        Prng.Rng memory rng = Prng.init(seed);
        Model memory m = _newModel(ops);
        Lib memory lib;
        for (uint256 i = 0; i < ops; ++i) _step(rng, m, lib);
        // Full sweep of the window and its surroundings at the end.
        uint256 from = m.highest > SIZE + 8 ? m.highest - SIZE - 8 : 0;
        for (uint256 s = from; s <= m.highest + 2; ++s) _assertIsUsedAgrees(m, lib, s);
    }

    function _step(Prng.Rng memory rng, Model memory m, Lib memory lib) private pure {
        Op memory op = _nextRange(rng, m);
        uint256 expected = _modelTryMark(m, op.first, op.count);
        _libTryMark(lib, op, expected);
        vm.assertEq(lib.highest, m.highest, "highest");
        _probeAround(rng, m, lib, op);
    }

    function _libTryMark(Lib memory lib, Op memory op, uint256 expected) private pure {
        Lib memory before = Lib(lib.highest, lib.bitmap);
        uint256 status = _tryMarkInPlace(lib, op.first, op.count);
        vm.assertEq(status, expected, "status");
        if (status != uint256(ReplayWindow.Status.Accepted)) {
            vm.assertEq(lib.highest, before.highest, "highest changed on refusal");
            vm.assertEq(lib.bitmap, before.bitmap, "bitmap changed on refusal");
        }
    }

    /// @dev Calls the library and stores its new state in `lib` (keeps the caller's stack shallow).
    function _tryMarkInPlace(Lib memory lib, uint256 first, uint256 count) private pure returns (uint256) {
        (ReplayWindow.Status status, uint32 newHighest, uint256 newBitmap) = ReplayWindow.tryMark(
            lib.highest,
            lib.bitmap,
            first,
            count
        );
        (lib.highest, lib.bitmap) = (newHighest, newBitmap);
        return uint256(status);
    }

    /// @dev isUsed around the range just tried and at the window's lower edge agrees with the model.
    function _probeAround(Prng.Rng memory rng, Model memory m, Lib memory lib, Op memory op) private pure {
        uint256 h = m.highest;
        _assertIsUsedAgrees(m, lib, op.first == 0 ? 0 : op.first - 1);
        _assertIsUsedAgrees(m, lib, op.first);
        _assertIsUsedAgrees(m, lib, op.first + op.count - 1);
        _assertIsUsedAgrees(m, lib, op.first + op.count);
        _assertIsUsedAgrees(m, lib, h >= SIZE ? h - SIZE : 0);
        _assertIsUsedAgrees(m, lib, h >= SIZE - 1 ? h - (SIZE - 1) : 0);
        _assertIsUsedAgrees(m, lib, rng.between(h > 300 ? h - 300 : 0, h + 1));
    }

    /// @dev The next range to try: mostly the next sequences, some windows, duplicates, late ones within the
    /// window, ones exactly at the window's edge, jumps and the top of uint32.
    function _nextRange(Prng.Rng memory rng, Model memory m) private pure returns (Op memory) {
        uint256 kind = rng.next() % 100;
        uint256 h = m.highest;
        uint256 first;
        uint256 count = 1;
        if (kind < 30) {
            first = h + 1 + rng.between(0, 3);
        } else if (kind < 45) {
            count = rng.chance(20) ? SIZE : rng.between(1, SIZE);
            first = rng.between(h > 300 ? h - 300 : 0, h + 300);
        } else if (kind < 60 && m.n > 0) {
            uint256 r = rng.next() % m.n;
            first = rng.between(m.firsts[r], m.lasts[r]);
            if (rng.chance(30)) count = rng.between(1, 8);
        } else if (kind < 75) {
            first = h - (rng.next() % (h < SIZE ? h + 1 : SIZE));
        } else if (kind < 85) {
            first = rng.chance(50) ? (h >= SIZE ? h - SIZE : 0) : (h >= SIZE - 1 ? h - (SIZE - 1) : 0);
            if (rng.chance(30)) count = rng.between(1, 4);
        } else if (kind < 95) {
            first = h + rng.between(SIZE - 2, 100_000);
        } else {
            count = rng.between(1, SIZE);
            first = MAX_SEQ - count + 1 - rng.between(0, 300);
        }
        if (first > MAX_SEQ) first = MAX_SEQ;
        if (first + count - 1 > MAX_SEQ) count = MAX_SEQ - first + 1;
        return Op(first, count);
    }

    function _newModel(uint256 capacity) private pure returns (Model memory m) {
        m.firsts = new uint256[](capacity);
        m.lasts = new uint256[](capacity);
    }

    function _modelTryMark(Model memory m, uint256 first, uint256 count) private pure returns (uint256) {
        uint256 last = first + count - 1;
        if (first + SIZE <= m.highest) return uint256(ReplayWindow.Status.Stale);
        for (uint256 i = 0; i < m.n; ++i) {
            if (m.firsts[i] <= last && first <= m.lasts[i]) return uint256(ReplayWindow.Status.Duplicate);
        }
        m.firsts[m.n] = first;
        m.lasts[m.n] = last;
        ++m.n;
        if (last > m.highest) m.highest = last;
        return uint256(ReplayWindow.Status.Accepted);
    }

    function _modelIsUsed(Model memory m, uint256 s) private pure returns (bool) {
        if (s + SIZE <= m.highest) return true;
        for (uint256 i = 0; i < m.n; ++i) {
            if (m.firsts[i] <= s && s <= m.lasts[i]) return true;
        }
        return false;
    }

    function _assertIsUsedAgrees(Model memory m, Lib memory lib, uint256 s) private pure {
        if (s > MAX_SEQ) return;
        vm.assertEq(ReplayWindow.isUsed(lib.highest, lib.bitmap, s), _modelIsUsed(m, s), "isUsed");
    }

    // ================================================================ one call from any state

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_tryMark_anyStateMatchesBitModel(
        uint32 highest,
        uint256 bitmap,
        uint256 first,
        uint256 count
    ) public pure {
        count = bound(count, 1, SIZE);
        first = bound(first, 0, MAX_SEQ - count + 1);
        // Bits for sequences below zero cannot be set in a reachable state.
        if (highest < SIZE - 1) bitmap &= (uint256(1) << (uint256(highest) + 1)) - 1;
        _checkBitModel(highest, bitmap, first, count);
    }

    /// @notice The same from ranges starting at the window's lower edge (250 .. 262 behind the highest), where
    /// uniform inputs almost never land.
    /// forge-config: default.fuzz.runs = 256
    function testFuzz_tryMark_atTheWindowEdgeMatchesBitModel(
        uint32 highest,
        uint256 bitmap,
        uint256 back,
        uint256 count
    ) public pure {
        highest = uint32(bound(highest, 262, type(uint32).max));
        back = bound(back, SIZE - 6, SIZE + 6);
        count = bound(count, 1, back + 1 < SIZE ? back + 1 : SIZE);
        _checkBitModel(highest, bitmap, highest - back, count);
    }

    function test_tryMark_atTheWindowEdgeMatchesBitModel_replay() public pure {
        _checkBitModel(1000, 0, 1000 - 256, 1);
        _checkBitModel(1000, type(uint256).max, 1000 - 256, 1);
        _checkBitModel(1000, 0, 1000 - 255, 1);
        _checkBitModel(1000, uint256(1) << 255, 1000 - 255, 1);
        _checkBitModel(1000, 1, 1000 - 255, 256);
        _checkBitModel(1000, 1, 1000 - 256, 256);
    }

    function test_tryMark_anyStateMatchesBitModel_replay() public pure {
        _checkBitModel(0, 0, 0, 1);
        _checkBitModel(0, 0, 0, SIZE);
        _checkBitModel(1000, 1, 744, 1);
        _checkBitModel(1000, 1, 745, 1);
        _checkBitModel(1000, type(uint256).max, 1001, SIZE);
        _checkBitModel(1000, type(uint256).max ^ (1 << 255), 745, 1);
        _checkBitModel(1000, 0x5, 990, 20);
        _checkBitModel(1000, 0x5, 1001, 256);
        _checkBitModel(type(uint32).max, 1, MAX_SEQ - 255, SIZE);
        _checkBitModel(7, 0xff, 0, 8);
        // From a fuzz case (bits beyond `highest` masked): bit 0 (sequence 12 itself) unset.
        _checkBitModel(12, 0xfca, 10, 1);
        _checkBitModel(12, 0xfca, 12, 1);
        _checkBitModel(12, 0xfca, 13, 256);
    }

    function _checkBitModel(uint32 highest, uint256 bitmap, uint256 first, uint256 count) private pure {
        uint256 last = first + count - 1;
        (ReplayWindow.Status status, uint32 newHighest, uint256 newBitmap) = ReplayWindow.tryMark(
            highest,
            bitmap,
            first,
            count
        );
        ReplayWindow.Status expected = ReplayWindow.Status.Accepted;
        if (first + SIZE <= highest) {
            expected = ReplayWindow.Status.Stale;
        } else {
            for (uint256 s = first; s <= last; ++s) {
                if (_bitModelUsed(highest, bitmap, s)) {
                    expected = ReplayWindow.Status.Duplicate;
                    break;
                }
            }
        }
        vm.assertEq(uint256(status), uint256(expected), "status");
        if (expected != ReplayWindow.Status.Accepted) {
            vm.assertEq(newHighest, highest, "highest changed on refusal");
            vm.assertEq(newBitmap, bitmap, "bitmap changed on refusal");
            return;
        }
        uint256 h = last > highest ? last : highest;
        vm.assertEq(newHighest, h, "highest");
        uint256 want;
        for (uint256 d = 0; d < SIZE && d <= h; ++d) {
            uint256 s = h - d;
            if ((s >= first && s <= last) || _bitModelUsed(highest, bitmap, s)) want |= uint256(1) << d;
        }
        vm.assertEq(newBitmap, want, "bitmap");
    }

    /// @dev Accepted in the bit model: within the window below `highest` and its bit set.
    function _bitModelUsed(uint256 highest, uint256 bitmap, uint256 s) private pure returns (bool) {
        return s <= highest && highest - s < SIZE && (bitmap >> (highest - s)) & 1 == 1;
    }

    /// forge-config: default.fuzz.runs = 256
    function testFuzz_isUsed(uint32 highest, uint256 bitmap, uint32 sequence) public pure {
        _checkIsUsed(highest, bitmap, sequence);
    }

    function test_isUsed_replay() public pure {
        _checkIsUsed(0, 0, 0);
        _checkIsUsed(0, 1, 0);
        _checkIsUsed(0, 1, 1);
        _checkIsUsed(1000, 0, 744);
        _checkIsUsed(1000, 0, 745);
        _checkIsUsed(1000, uint256(1) << 255, 745);
        _checkIsUsed(type(uint32).max, 1, type(uint32).max);
    }

    function _checkIsUsed(uint32 highest, uint256 bitmap, uint32 sequence) private pure {
        bool expected;
        if (sequence > highest) expected = false;
        else if (uint256(highest) - sequence >= SIZE) expected = true;
        else expected = _bitModelUsed(highest, bitmap, sequence);
        vm.assertEq(ReplayWindow.isUsed(highest, bitmap, sequence), expected, "isUsed");
    }

    // ================================================================ concrete cases

    function test_tryMark_freshDeviceAcceptsSequenceZeroOnce() public pure {
        Lib memory lib;
        _expect(lib, 0, 1, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, 0, "highest");
        vm.assertEq(lib.bitmap, 1, "bitmap");
        _expect(lib, 0, 1, ReplayWindow.Status.Duplicate);
        vm.assertTrue(ReplayWindow.isUsed(lib.highest, lib.bitmap, 0), "0 used");
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 1), "1 unused");
    }

    function test_tryMark_duplicateIsRefusedAndChangesNothing() public pure {
        Lib memory lib;
        _expect(lib, 5, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 6, 1, ReplayWindow.Status.Accepted);
        (uint32 h, uint256 b) = (lib.highest, lib.bitmap);
        _expect(lib, 5, 1, ReplayWindow.Status.Duplicate);
        _expect(lib, 6, 1, ReplayWindow.Status.Duplicate);
        _expect(lib, 4, 3, ReplayWindow.Status.Duplicate); // 4 is new, 5 and 6 are not: refused whole
        vm.assertEq(lib.highest, h, "highest");
        vm.assertEq(lib.bitmap, b, "bitmap");
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 4), "4 still unused");
    }

    function test_tryMark_staleAtExactly256Behind() public pure {
        Lib memory lib;
        _expect(lib, 1000, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 1000 - 256, 1, ReplayWindow.Status.Stale);
        vm.assertTrue(ReplayWindow.isUsed(lib.highest, lib.bitmap, 1000 - 256), "744 is used (stale)");
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 1000 - 255), "745 is unused");
        _expect(lib, 1000 - 255, 1, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.bitmap, (uint256(1) << 255) | 1, "bitmap: bits 0 and 255");
        // A range reaching into the window but starting 256 behind is stale as a whole.
        _expect(lib, 1000 - 256, 5, ReplayWindow.Status.Stale);
        // One step further the oldest bit falls off: 745 becomes stale rather than "accepted".
        _expect(lib, 1001, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 1000 - 255, 1, ReplayWindow.Status.Stale);
    }

    function test_tryMark_outOfOrderWithinWindow() public pure {
        Lib memory lib;
        _expect(lib, 10, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 7, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 9, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 8, 1, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, 10, "highest stays");
        vm.assertEq(lib.bitmap, 0xf, "bits 0..3 = 10, 9, 8, 7");
        _expect(lib, 7, 1, ReplayWindow.Status.Duplicate);
        _expect(lib, 0, 7, ReplayWindow.Status.Accepted); // 0..6, all behind and new
        vm.assertEq(lib.bitmap, 0x7ff, "0..10");
    }

    function test_tryMark_windowOf256AtOnce() public pure {
        Lib memory lib;
        _expect(lib, 0, 256, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, 255, "highest");
        vm.assertEq(lib.bitmap, type(uint256).max, "full map");
        _expect(lib, 255, 256, ReplayWindow.Status.Duplicate); // overlaps by one
        _expect(lib, 256, 256, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, 511, "highest");
        vm.assertEq(lib.bitmap, type(uint256).max, "full map");
        vm.assertTrue(ReplayWindow.isUsed(lib.highest, lib.bitmap, 0), "first window is now stale");
        _expect(lib, 0, 256, ReplayWindow.Status.Stale);
        // A window far ahead wipes the map: everything before it is stale.
        _expect(lib, 10_000, 256, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, 10_255, "highest");
        vm.assertEq(lib.bitmap, type(uint256).max, "full map");
        _expect(lib, 9999, 1, ReplayWindow.Status.Stale);
    }

    function test_tryMark_gapsStayAcceptableWhileInTheWindow() public pure {
        Lib memory lib;
        _expect(lib, 1, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 100, 1, ReplayWindow.Status.Accepted); // counter jumped after a power loss
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 50), "gap is unused");
        _expect(lib, 50, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 2, 48, ReplayWindow.Status.Accepted); // the rest of the gap below 50
        _expect(lib, 51, 49, ReplayWindow.Status.Accepted); // and above
        _expect(lib, 1, 100, ReplayWindow.Status.Duplicate);
        // A jump of 256 or more makes every older sequence stale, used or not.
        _expect(lib, 400, 1, ReplayWindow.Status.Accepted);
        vm.assertTrue(ReplayWindow.isUsed(lib.highest, lib.bitmap, 144), "144 stale");
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 145), "145 unused");
        _expect(lib, 101, 1, ReplayWindow.Status.Stale);
        _expect(lib, 145, 255, ReplayWindow.Status.Accepted); // 145..399 fill the window exactly
        vm.assertEq(lib.bitmap, type(uint256).max, "full map");
    }

    function test_tryMark_rangeStraddlingHighest() public pure {
        Lib memory lib;
        _expect(lib, 10, 1, ReplayWindow.Status.Accepted);
        _expect(lib, 8, 5, ReplayWindow.Status.Duplicate); // 8..12 contains 10: refused whole
        vm.assertEq(lib.highest, 10, "refused: highest unchanged");
        vm.assertFalse(ReplayWindow.isUsed(lib.highest, lib.bitmap, 8), "8 still unused");
        _expect(lib, 11, 5, ReplayWindow.Status.Accepted); // 11..15
        vm.assertEq(lib.highest, 15, "highest");
        vm.assertEq(lib.bitmap, 0x3f, "10..15");
        _expect(lib, 14, 3, ReplayWindow.Status.Duplicate); // 14..16: 14 and 15 used
        vm.assertEq(lib.highest, 15, "highest unchanged by refusal");
    }

    function test_tryMark_topOfUint32() public pure {
        Lib memory lib;
        _expect(lib, MAX_SEQ - 255, 256, ReplayWindow.Status.Accepted);
        vm.assertEq(lib.highest, type(uint32).max, "highest");
        vm.assertEq(lib.bitmap, type(uint256).max, "full map");
        _expect(lib, MAX_SEQ, 1, ReplayWindow.Status.Duplicate);
        _expect(lib, MAX_SEQ - 256, 1, ReplayWindow.Status.Stale);
    }

    function _expect(Lib memory lib, uint256 first, uint256 count, ReplayWindow.Status expected) private pure {
        vm.assertEq(_tryMarkInPlace(lib, first, count), uint256(expected), "status");
    }
}
