// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title MktLib
/// @notice Mean kinetic temperature (USP <1079.2>) with a lookup table instead of exp/ln on-chain.
/// @dev MKT = (dH/R) / -ln( sum(t_i * e^(-dH/(R*T_i))) / sum(t_i) ), with dH/R = 10,000 K exactly.
/// The factor e^(-10000/T) x 1e30 is read from {MktTable}, a data contract holding 1601 big-endian uint64
/// entries for -80.0 .. +80.0 degrees C in 0.1 degree steps (entry i <-> -80.0 + 0.1 i degrees C), after a
/// leading STOP byte. Each reading is quantised to the nearest 0.1 degree C (error <= 0.05 K per reading);
/// readings beyond the table are clamped to its ends. The inverse, from the weighted mean back to a
/// temperature, searches the table and interpolates linearly between neighbours, rounding down to 0.01 K:
/// in all, the MKT is within 0.051 K of the exact value. A table lookup costs ~110 gas warm, against ~400
/// for a fixed-point exp.
library MktLib {
    /// @notice Lowest temperature in the table, centi-degrees C.
    int256 internal constant TABLE_MIN_CENTI_C = -8000;
    /// @notice Highest temperature in the table, centi-degrees C.
    int256 internal constant TABLE_MAX_CENTI_C = 8000;
    /// @notice Number of table entries.
    uint256 internal constant ENTRIES = 1601;
    /// @notice Size of the table contract's runtime code: STOP byte + 8 bytes per entry.
    uint256 internal constant TABLE_CODE_SIZE = 1 + ENTRIES * 8;

    /// @notice Table index of a temperature: nearest 0.1 degree C (halves upward), clamped to the table.
    function indexOf(int256 tempCentiC) internal pure returns (uint256) {
        // Temperatures are int16 (|t| < 2^15): the sum cannot overflow.
        unchecked {
            int256 shifted = tempCentiC - TABLE_MIN_CENTI_C + 5;
            if (shifted <= 0) return 0;
            // shifted > 0 here, so the cast is exact.
            uint256 i = uint256(shifted) / 10;
            return i >= ENTRIES ? ENTRIES - 1 : i;
        }
    }

    /// @notice Copies the whole table into memory (allocated, 12,808 bytes + one word of padding) and returns
    /// where it starts; {factorIn} then reads an entry for ~20 gas instead of ~110 for an EXTCODECOPY.
    /// @dev Costs about 5,500 gas once (cold account access, memory expansion and the copy).
    function loadIntoMemory(address table) internal view returns (uint256 ptr) {
        assembly ("memory-safe") {
            ptr := mload(0x40)
            let size := mul(ENTRIES, 8)
            // One word of padding: {factorIn} reads 32 bytes at the last entry.
            mstore(0x40, add(ptr, add(size, 0x20)))
            mstore(add(ptr, size), 0)
            extcodecopy(table, ptr, 1, size)
        }
    }

    /// @notice The factor of a temperature from a table copied by {loadIntoMemory}.
    function factorIn(uint256 tablePtr, int256 tempCentiC) internal pure returns (uint256 f) {
        uint256 i = indexOf(tempCentiC);
        assembly ("memory-safe") {
            f := shr(192, mload(add(tablePtr, shl(3, i))))
        }
    }

    /// @notice Table entry `i`: e^(-10000 / T_i) x 1e30 with T_i in kelvin.
    function factorAt(address table, uint256 i) internal view returns (uint256 f) {
        assembly ("memory-safe") {
            // Scratch space 0x00..0x1f: no memory expansion, nothing to clean up.
            mstore(0x00, 0)
            extcodecopy(table, 0x00, add(1, mul(i, 8)), 8)
            f := shr(192, mload(0x00))
        }
    }

    /// @notice The MKT factor of a reading's temperature.
    function factorOf(address table, int256 tempCentiC) internal view returns (uint256) {
        return factorAt(table, indexOf(tempCentiC));
    }

    /// @notice Inverse of the weighted mean: the temperature whose factor equals `weightedSum / seconds`.
    /// @param weightedSum sum of seconds x factor
    /// @param seconds_ sum of seconds (non-zero)
    /// @return mktCentiC mean kinetic temperature in centi-degrees C, clamped to the table range
    function meanKineticCentiC(
        address table,
        uint256 weightedSum,
        uint256 seconds_
    ) internal view returns (int256 mktCentiC) {
        if (weightedSum < factorAt(table, 0) * seconds_) return TABLE_MIN_CENTI_C;
        if (weightedSum >= factorAt(table, ENTRIES - 1) * seconds_) return TABLE_MAX_CENTI_C;
        // Invariant: factor(lo) * seconds <= weightedSum < factor(hi) * seconds.
        uint256 lo = 0;
        uint256 hi = ENTRIES - 1;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (factorAt(table, mid) * seconds_ <= weightedSum) lo = mid;
            else hi = mid;
        }
        uint256 fLo = factorAt(table, lo);
        uint256 fHi = factorAt(table, hi);
        uint256 fraction = (10 * (weightedSum - fLo * seconds_)) / ((fHi - fLo) * seconds_);
        // lo <= 1599 and fraction < 10: both casts are exact.
        mktCentiC = TABLE_MIN_CENTI_C + int256(lo * 10 + fraction);
    }
}
