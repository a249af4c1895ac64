// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {TestBase} from "./utils/TestBase.sol";

/// @title ProtocolVectorsTest
/// @notice The golden vectors of docs/protocol.md (also asserted in TypeScript by test/protocol.test.ts),
/// recomputed here with Solidity's own abi.encode, keccak256, ecrecover and the P256VERIFY precompile.
contract ProtocolVectorsTest is TestBase {
    uint256 private constant CHAIN_ID = 31337;
    address private constant VERIFYING_CONTRACT = 0x5FbDB2315678afecb367f032d93F642f64180aa3;
    address private constant DEVICE_ADDRESS = 0xFCAd0B19bB29D4674531d6f115237E16AfCE377c;
    bytes32 private constant P256_X = 0x984225585d2285c138033d6140e3cef8b91859704e53c313f8b636ba4f967649;
    bytes32 private constant P256_Y = 0x9734144f46fd19a767a545287c4396b97b69dd38faaea8981adc1a4fed9b401e;

    bytes32 private constant DOMAIN_SEPARATOR = 0x56ecf7bb493d7bbe8d3f7f59a1ff6546cea075cdabefd7b23d9d3dd24d4c41c1;
    bytes32 private constant READING_TYPEHASH = 0xabe54e5555e29a5337ea42592382d2e9aa79d57e29147f0cbc533671e204ee8b;
    bytes32 private constant WINDOW_TYPEHASH = 0x587d359fc29d66ac1512554bb6a384a236c0be29ac7fd115354293ffab14404d;

    function test_domainSeparator() public pure {
        bytes32 separator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ColdChain"),
                keccak256("1"),
                CHAIN_ID,
                VERIFYING_CONTRACT
            )
        );
        assert(separator == DOMAIN_SEPARATOR);
    }

    function test_typehashes() public pure {
        assert(
            keccak256("Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags)") ==
                READING_TYPEHASH
        );
        assert(
            keccak256(
                abi.encodePacked(
                    "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,",
                    "uint32 intervalSeconds,bytes samples)"
                )
            ) == WINDOW_TYPEHASH
        );
    }

    function test_reading_digestAndSignatures() public view {
        bytes32 structHash = keccak256(
            abi.encode(READING_TYPEHASH, uint64(0xc0ffee), uint32(42), uint40(1767225600), int16(512), uint8(0))
        );
        assert(structHash == 0x349d2ad973ae3e0adfc5eac6b68882d7dd0767769f4a3d542e668bd370234a0f);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0xd1b8e34dee4ee60a2a3a47303052a06a559b811345e14363fc7ac32887596734);
        _assertSecp256k1(
            digest,
            0xfa8bb71f6a24b4a73feb718d714d8f8324825d710ce5b09f3b03a4472eda992f,
            0x7441de4bdab4924d301736940609872f18b32961d167144ad2eeaa44caf384e6
        );
        _assertP256(
            digest,
            0xdca57cf587383e200c4bf06830b9f592acee9459d3137b13dde64d84e15ce7a9,
            0x3bd6ca1ea3e4611951eae44f07414f3ca576c83e4f9a62c91bf6225fa10bf257
        );
    }

    function test_negativeReading_signExtendsTheTemperature() public pure {
        bytes32 structHash = keccak256(
            abi.encode(READING_TYPEHASH, uint64(0xc0ffee), uint32(43), uint40(1767225900), int16(-1850), uint8(2))
        );
        assert(structHash == 0x401ad689ed992159c4f90da9bf5f6365a5b032f584fec39269417540ca435c15);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0x8d46ebe3f7d324344709c6ea65a150efcb01279e9a1c61289622251781d4d8ad);
        _assertSecp256k1(
            digest,
            0x6368ff66766c66e2c0758aaeffaf191aedb336420c64cb8ce0dcfa090e1ebd31,
            0xd095ab738405f671f01e727334cbcb2d91dd1ba47c6bf92838e6b43db6faef1b
        );
    }

    function test_window_digestAndSignatures() public view {
        bytes memory samples = hex"01c20001f900032c00ffe200";
        bytes32 structHash = keccak256(
            abi.encode(
                WINDOW_TYPEHASH,
                uint64(0xc0ffee),
                uint32(100),
                uint40(1767225600),
                uint32(300),
                keccak256(samples)
            )
        );
        assert(structHash == 0x470242d973aab594902c1699454479d7daf37f11dfd8e6206b93c695620f5d27);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0x0f7bb3f397aa5f44d1e727a6cedfe10757806f01f1a2c56c86f41139aa9b91e1);
        _assertSecp256k1(
            digest,
            0xbb9bbfdd2b9c1e6b18f3fd0e181b4a415f74bd5cb7372e30c8c0a80a710e2916,
            0x9f9a041c934fa812f08177da4c537e9329a4d9024ccc99b01bf36a442b19a095
        );
        _assertP256(
            digest,
            0xe2a52cf021cebf741a9c22985ebcaf8aaea32617f676c8549d6ab84cd8c71218,
            0x3c99d5cc1d60194ba7cc71d80419962367b31b24d5f56b9ddf6d66d7132fac51
        );
    }

    /// @dev EIP-2098: the top bit of `vs` is the y parity.
    function _assertSecp256k1(bytes32 digest, bytes32 r, bytes32 vs) private pure {
        bytes32 s = vs & bytes32(uint256(type(uint256).max >> 1));
        uint8 v = uint8(uint256(vs) >> 255) + 27;
        assert(ecrecover(digest, v, r, s) == DEVICE_ADDRESS);
    }

    function _assertP256(bytes32 digest, bytes32 r, bytes32 s) private view {
        (bool ok, bytes memory out) = address(0x100).staticcall(abi.encode(digest, r, s, P256_X, P256_Y));
        assert(ok && out.length == 32 && abi.decode(out, (uint256)) == 1);
    }
}
