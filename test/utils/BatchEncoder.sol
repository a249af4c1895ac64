// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {Vm} from "./Vm.sol";

/// @title BatchEncoder
/// @notice Builds the packed batches of IReadingsInbox and signs their items with test keys, written from the
/// format documented in IReadingsInbox.sol (independently of the inbox's decoder):
/// ```
/// batch    := version:u8 (=2) item*
/// READINGS := 0x01 deviceId:u64 count:u16
///             { sequence:u32 observedAt:u40 tempCentiC:i16 flags:u8 previousObservedAt:u40 sig:64 } * count
/// WINDOW   := 0x02 deviceId:u64 firstSequence:u32 firstObservedAt:u40 intervalSeconds:u32 count:u16
///             previousObservedAt:u40 samples:(count * {tempCentiC:i16 flags:u8}) sig:64
/// ```
/// secp256k1 signatures are EIP-2098 compact: r || (s | (v - 27) << 255).
library BatchEncoder {
    Vm private constant VM = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @notice EIP-712 domain type (name, version, chainId, verifyingContract).
    bytes32 internal constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    /// @notice EIP-712 type of one reading.
    bytes32 internal constant READING_TYPEHASH = keccak256(
        abi.encodePacked(
            "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags,",
            "uint40 previousObservedAt)"
        )
    );
    /// @notice EIP-712 type of a device window (`samples` hashed as bytes).
    bytes32 internal constant READING_WINDOW_TYPEHASH = keccak256(
        abi.encodePacked(
            "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,",
            "uint32 intervalSeconds,bytes samples,uint40 previousObservedAt)"
        )
    );

    /// @notice Version byte of every batch.
    uint8 internal constant BATCH_VERSION = 0x02;
    /// @notice Item kind of a run of single readings.
    uint8 internal constant KIND_READINGS = 0x01;
    /// @notice Item kind of a device window.
    uint8 internal constant KIND_WINDOW = 0x02;
    /// @notice Bytes of one reading inside a READINGS item.
    uint256 internal constant READING_BYTES = 81;

    /// @notice One reading as a device signs it.
    struct Reading {
        uint64 deviceId;
        uint32 sequence;
        uint40 observedAt;
        int16 tempCentiC;
        uint8 flags;
        uint40 previousObservedAt;
    }

    /// @notice One sample of a window.
    struct Sample {
        int16 tempCentiC;
        uint8 flags;
    }

    /// @notice The ColdChain EIP-712 domain separator of a deployment on the current chain.
    function domainSeparator(address verifyingContract) internal view returns (bytes32) {
        return
            keccak256(
                abi.encode(DOMAIN_TYPEHASH, keccak256("ColdChain"), keccak256("2"), block.chainid, verifyingContract)
            );
    }

    /// @notice EIP-712 digest of a reading.
    function readingDigest(bytes32 domain, Reading memory r) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                READING_TYPEHASH,
                r.deviceId,
                r.sequence,
                r.observedAt,
                int256(r.tempCentiC),
                r.flags,
                r.previousObservedAt
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domain, structHash));
    }

    /// @notice EIP-712 digest of a device window over its packed samples.
    function windowDigest(
        bytes32 domain,
        uint64 deviceId,
        uint32 firstSequence,
        uint40 firstObservedAt,
        uint32 intervalSeconds,
        bytes memory samples,
        uint40 previousObservedAt
    ) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                READING_WINDOW_TYPEHASH,
                deviceId,
                firstSequence,
                firstObservedAt,
                intervalSeconds,
                keccak256(samples),
                previousObservedAt
            )
        );
        return keccak256(abi.encodePacked(hex"1901", domain, structHash));
    }

    /// @notice Signs `digest` with `privateKey` and returns the EIP-2098 compact form (r, vs).
    function signCompact(uint256 privateKey, bytes32 digest) internal pure returns (bytes32 r, bytes32 vs) {
        (uint8 v, bytes32 r_, bytes32 s) = VM.sign(privateKey, digest);
        r = r_;
        vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
    }

    /// @notice One reading's 81 bytes inside a READINGS item, with a given signature.
    function encodeReading(Reading memory r, bytes32 sigR, bytes32 sigVs) internal pure returns (bytes memory) {
        return abi.encodePacked(r.sequence, r.observedAt, r.tempCentiC, r.flags, r.previousObservedAt, sigR, sigVs);
    }

    /// @notice One reading's 81 bytes, signed by `privateKey` for `domain`.
    function signReading(bytes32 domain, uint256 privateKey, Reading memory r) internal pure returns (bytes memory) {
        (bytes32 sigR, bytes32 sigVs) = signCompact(privateKey, readingDigest(domain, r));
        return encodeReading(r, sigR, sigVs);
    }

    /// @notice A READINGS item header followed by `count` encoded readings (`body`).
    function readingsItem(uint64 deviceId, uint16 count, bytes memory body) internal pure returns (bytes memory) {
        return abi.encodePacked(KIND_READINGS, deviceId, count, body);
    }

    /// @notice A READINGS item of `readings` (all of one device), each signed by `privateKey`.
    function signedReadingsItem(
        bytes32 domain,
        uint256 privateKey,
        Reading[] memory readings
    ) internal pure returns (bytes memory) {
        bytes memory body;
        for (uint256 i = 0; i < readings.length; ++i) {
            body = bytes.concat(body, signReading(domain, privateKey, readings[i]));
        }
        return readingsItem(readings[0].deviceId, uint16(readings.length), body);
    }

    /// @notice Packed samples of a window: tempCentiC (int16) | flags (uint8) each.
    function packSamples(Sample[] memory samples) internal pure returns (bytes memory packed) {
        for (uint256 i = 0; i < samples.length; ++i) {
            packed = bytes.concat(packed, abi.encodePacked(samples[i].tempCentiC, samples[i].flags));
        }
    }

    /// @notice A WINDOW item with a given signature; `count` is taken from the samples' length.
    function windowItem(
        uint64 deviceId,
        uint32 firstSequence,
        uint40 firstObservedAt,
        uint32 intervalSeconds,
        bytes memory samples,
        uint40 previousObservedAt,
        bytes32 sigR,
        bytes32 sigVs
    ) internal pure returns (bytes memory) {
        return
            abi.encodePacked(
                KIND_WINDOW,
                deviceId,
                firstSequence,
                firstObservedAt,
                intervalSeconds,
                uint16(samples.length / 3),
                previousObservedAt,
                samples,
                sigR,
                sigVs
            );
    }

    /// @notice A WINDOW item signed by `privateKey` for `domain`.
    function signedWindowItem(
        bytes32 domain,
        uint256 privateKey,
        uint64 deviceId,
        uint32 firstSequence,
        uint40 firstObservedAt,
        uint32 intervalSeconds,
        bytes memory samples,
        uint40 previousObservedAt
    ) internal pure returns (bytes memory) {
        bytes32 digest = windowDigest(
            domain,
            deviceId,
            firstSequence,
            firstObservedAt,
            intervalSeconds,
            samples,
            previousObservedAt
        );
        (bytes32 sigR, bytes32 sigVs) = signCompact(privateKey, digest);
        return
            windowItem(
                deviceId,
                firstSequence,
                firstObservedAt,
                intervalSeconds,
                samples,
                previousObservedAt,
                sigR,
                sigVs
            );
    }

    /// @notice A batch: the version byte followed by the concatenated items.
    function batch(bytes memory items) internal pure returns (bytes memory) {
        return abi.encodePacked(BATCH_VERSION, items);
    }

    /// @notice The 12-byte record a ReadingsRecorded event carries for `r` (the first 12 bytes of its item).
    function readingRecord(Reading memory r) internal pure returns (bytes memory) {
        return abi.encodePacked(r.sequence, r.observedAt, r.tempCentiC, r.flags);
    }
}
