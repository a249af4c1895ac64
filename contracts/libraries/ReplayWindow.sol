// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title ReplayWindow
/// @notice Anti-replay window over a device's sequence numbers, as in IPsec (RFC 4303 section 3.4.3).
/// @dev State is the highest sequence accepted (`highest`) and a 256-bit map: bit `d` is set when sequence
/// `highest - d` was accepted. Sequences may skip (a logger's counter jumps after a power loss) and may arrive
/// late and out of order, as long as they are within `SIZE` of the highest one; older ones are stale.
/// A range `[first, first + count)` (a device window) is accepted whole or not at all.
library ReplayWindow {
    /// @notice Width of the window in sequences.
    uint256 internal constant SIZE = 256;

    /// @notice Outcome of {tryMark}.
    enum Status {
        Accepted,
        Stale,
        Duplicate
    }

    /// @notice Marks `count` consecutive sequences starting at `first` as used, if all of them are new.
    /// @param highest highest sequence accepted so far (0 with an empty map for a fresh device)
    /// @param bitmap the window map
    /// @param first first sequence of the range
    /// @param count length of the range, 1 .. SIZE (the caller checks `first + count - 1` fits in uint32)
    /// @return status Accepted, Stale (part of the range is older than the window) or Duplicate
    /// @return newHighest updated highest sequence (unchanged unless Accepted)
    /// @return newBitmap updated map (unchanged unless Accepted)
    function tryMark(
        uint32 highest,
        uint256 bitmap,
        uint256 first,
        uint256 count
    ) internal pure returns (Status status, uint32 newHighest, uint256 newBitmap) {
        // Both bounds are checked by the caller: count in 1..256 and last <= type(uint32).max, so nothing here
        // can overflow or underflow.
        unchecked {
            uint256 last = first + count - 1;
            uint256 rangeMask = count == SIZE ? type(uint256).max : (uint256(1) << count) - 1;
            if (last > highest) {
                uint256 shift = last - highest;
                uint256 shifted = shift >= SIZE ? 0 : bitmap << shift;
                if (shifted & rangeMask != 0) return (Status.Duplicate, highest, bitmap);
                // `last` fits in uint32 (checked by the caller).
                return (Status.Accepted, uint32(last), shifted | rangeMask);
            }
            if (highest - first >= SIZE) return (Status.Stale, highest, bitmap);
            uint256 mask = rangeMask << (highest - last);
            if (bitmap & mask != 0) return (Status.Duplicate, highest, bitmap);
            return (Status.Accepted, highest, bitmap | mask);
        }
    }

    /// @notice Whether `sequence` is used: accepted before, or older than the window (so refused as stale).
    function isUsed(uint32 highest, uint256 bitmap, uint256 sequence) internal pure returns (bool) {
        if (sequence > highest) return false;
        unchecked {
            uint256 d = highest - sequence;
            return d >= SIZE || (bitmap >> d) & 1 == 1;
        }
    }
}
