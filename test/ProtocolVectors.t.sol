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

    bytes32 private constant DOMAIN_SEPARATOR = 0xbd6d8dfdb0784def1a6e0b8ee00edd22f8ba191589f67b01789bc11fa6aa9288;
    bytes32 private constant READING_TYPEHASH = 0x4dd0e7f7450ddaeece55422ef8d1517ba8873984bb66995f3ae177b7e7df9951;
    bytes32 private constant WINDOW_TYPEHASH = 0xf5d575fa12cac3c1f00c02633ee5b7193ae2c25068531e391e82f118852f7c53;

    function test_domainSeparator() public pure {
        bytes32 separator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ColdChain"),
                keccak256("2"),
                CHAIN_ID,
                VERIFYING_CONTRACT
            )
        );
        assert(separator == DOMAIN_SEPARATOR);
    }

    function test_typehashes() public pure {
        assert(
            keccak256(
                abi.encodePacked(
                    "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags,",
                    "uint40 previousObservedAt)"
                )
            ) == READING_TYPEHASH
        );
        assert(
            keccak256(
                abi.encodePacked(
                    "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,",
                    "uint32 intervalSeconds,bytes samples,uint40 previousObservedAt)"
                )
            ) == WINDOW_TYPEHASH
        );
    }

    function test_reading_digestAndSignatures() public view {
        bytes32 structHash = keccak256(
            abi.encode(
                READING_TYPEHASH,
                uint64(0xc0ffee),
                uint32(42),
                uint40(1767225600),
                int16(512),
                uint8(0),
                uint40(1767225300)
            )
        );
        assert(structHash == 0x4890ebfc93e2ec9a7d00592114a767f64ebed7eb70fc0eb723fc65e9b9e974f8);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0xf20658c9df7879ee6f3a3bf9774f1152c33889578caec49abd6fc6802924e77c);
        _assertSecp256k1(
            digest,
            0xf8f4fab1c164448b5f4ab906b0d56b499906d30ee439de7e8bf1048c6d225f30,
            0x98beb6a9998339d4c402e82f5934cc84c173909e08ad44b9cd7ceacb1544c004
        );
        _assertP256(
            digest,
            0xed6139cd359d9c2f17bf4826fb652dfb28f4968d0db8fa23f390c0bbde8afe22,
            0x44d5558290717dee927157de5aa2cdf2531689f8f3ba11804d94945cb8317260
        );
    }

    function test_negativeReading_signExtendsTheTemperature() public pure {
        bytes32 structHash = keccak256(
            abi.encode(
                READING_TYPEHASH,
                uint64(0xc0ffee),
                uint32(43),
                uint40(1767225900),
                int16(-1850),
                uint8(2),
                uint40(1767225600)
            )
        );
        assert(structHash == 0x1009e87d418ae627123e47dc51488877680f3a4adf097ba66fb63e4ca173a787);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0xeb64f8069978aed680d05f0d2fe5aca124e837f1c15ffa2c65d2bbec358997d2);
        _assertSecp256k1(
            digest,
            0x9103c00667cb0a4db82836df9722190168d82a815d65ed833b8bbbd5d2fb1c1d,
            0x36d33758d58b15fd11166ed9e92d6c3ae2ea7b53c43e58a43b9d609409efa672
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
                keccak256(samples),
                uint40(0)
            )
        );
        assert(structHash == 0x7a8584f84886a01baf7f416202c1f6bb6f54031ffefadc494426217e0e2ae7bf);
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
        assert(digest == 0xadf9ddb454ba731e12b37a19486d6bec53b56cc2e63489c6f2ecbacef34eefb9);
        _assertSecp256k1(
            digest,
            0xd83c88dd19b0ae0e5cb1d142ed6bd670dd1e9ef8c20dc213490af141aa73451c,
            0x019dc1f533d12010b8af511ebac6d4641e822792b8d22f438439c5d72a0e121b
        );
        _assertP256(
            digest,
            0x91dbf338e6f9dcb4d7ba3c6250c7c036bf144319314a67e57b3186f433e59fc6,
            0x7373e2a0ca74a7d29a37a4f33fb087602867b8243c4f7f821b10f4076ae47081
        );
    }

    /// @notice The vector of another domain (chain 11155111, a verifyingContract no local deploy gives): firmware
    /// that hard-codes the test domain's separator cannot pass it.
    function test_altDomain_digestsAndSignatures() public view {
        bytes32 separator = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ColdChain"),
                keccak256("2"),
                uint256(11155111),
                0xC0C0c0c0C0C0c0c0c0C0c0C0C0C0C0C0C0C0c0c0
            )
        );
        assert(separator == 0x443e839fae78a2ec9a6643c10761cc0d3fd0a544ae6b510bf5a5e2321567d215);
        bytes32 readingDigest = keccak256(
            abi.encodePacked(
                hex"1901",
                separator,
                bytes32(0x4890ebfc93e2ec9a7d00592114a767f64ebed7eb70fc0eb723fc65e9b9e974f8)
            )
        );
        assert(readingDigest == 0x5ca3f40b70f1ebecb2856fb30f2dc2bae712444dc9d0e5869dfd38bb73f5edcb);
        _assertSecp256k1(
            readingDigest,
            0xc5e9b3ce49977c5812732ba7480d83bd52945d94a1d1588b389811b19c582c93,
            0x250019d5230fb03cd38e08557fa8e09b9ae55de20894f2a53f5972f6d29e0a41
        );
        _assertP256(
            readingDigest,
            0x6bb5c07a91c4c3526b4d593eb4ca8ee04f8f0485c4f0d44fd297b727f8364da8,
            0x61138adf846a4ab524a84da19a4942427ddab68ba57c0c446b8099c7dd95b8c1
        );
        bytes32 windowDigest = keccak256(
            abi.encodePacked(
                hex"1901",
                separator,
                bytes32(0x7a8584f84886a01baf7f416202c1f6bb6f54031ffefadc494426217e0e2ae7bf)
            )
        );
        assert(windowDigest == 0x76d4556de21903366dbe0cb99be059d86f49f5ac8a82337607f82d4cf52a9a74);
        _assertSecp256k1(
            windowDigest,
            0x73fb110032d867d19d0011fff076326c51c9305ba8ec2a8a657b277eaf321b8d,
            0x1bc1d932b635b883305c2e91ddb0e775d3115630c0d9917b638fea8d84c0c794
        );
        _assertP256(
            windowDigest,
            0xd641ae3ac6e475001716cf69be3716fe2f429078d1fb01630515d17ded160670,
            0x187a698befc3d43eb3144a383520bfe71626e350c20ec20a7ad50ffbb3abc14f
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
