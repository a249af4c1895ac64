// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IShipments} from "../contracts/interfaces/IShipments.sol";

import {ColdChainFixture} from "./utils/ColdChainFixture.sol";

/// @title DecisionNotesTest
/// @notice `decideWithNote`: a release or rejection with the decider's free-text note (event `DecisionNoted`), held
/// to the same parties, status and pause checks as `release` and `reject`, with a reason code on every rejection
/// and none on a release, and a note of 1 to 280 bytes.
contract DecisionNotesTest is ColdChainFixture {
    uint64 internal constant DEVICE = 101;
    uint256 internal constant MAX_NOTE = 280;
    bytes32 internal constant MISSING_DATA = "MISSING_DATA";

    uint64 internal shipmentId;
    address internal stranger = makeAddr("stranger");

    function setUp() public {
        deploySuite();
        registerDevice(DEVICE, 300, keyOf("device"));
        shipmentId = startedShipment(DEVICE);
        vm.warp(T0 + 3600);
        vm.prank(shipper);
        coldChain.offerCustody(shipmentId, receiver, uint40(T0 + 7200));
        vm.prank(receiver);
        coldChain.acceptCustody(shipmentId); // delivered
    }

    function _note(uint256 length) internal pure returns (string memory) {
        bytes memory b = new bytes(length);
        for (uint256 i = 0; i < length; ++i) b[i] = "a";
        return string(b);
    }

    function test_rejectWithNote_recordsTheCodeAndEmitsTheNote() public {
        vm.expectEmit(true, true, false, true, address(coldChain));
        emit IShipments.ShipmentRejected(shipmentId, receiver, MISSING_DATA);
        vm.expectEmit(true, true, false, true, address(coldChain));
        emit IShipments.DecisionNoted(shipmentId, receiver, "logger 101 silent for 2 h at the hub");
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, false, MISSING_DATA, "logger 101 silent for 2 h at the hub");
        IShipments.ShipmentInfo memory info = coldChain.shipment(shipmentId);
        vm.assertEq(uint256(info.status), uint256(IShipments.ShipmentStatus.Rejected), "rejected");
        vm.assertEq(info.rejectionCode, MISSING_DATA, "reason code stored");
        vm.assertEq(uint256(info.decidedAt), T0 + 3600, "decided now");
    }

    function test_releaseWithNote_byQa() public {
        vm.expectEmit(true, true, false, true, address(coldChain));
        emit IShipments.ShipmentReleased(shipmentId, address(this));
        vm.expectEmit(true, true, false, true, address(coldChain));
        emit IShipments.DecisionNoted(shipmentId, address(this), unicode"released after review — −0.3 °C");
        coldChain.decideWithNote(shipmentId, true, 0, unicode"released after review — −0.3 °C");
        IShipments.ShipmentInfo memory info = coldChain.shipment(shipmentId);
        vm.assertEq(uint256(info.status), uint256(IShipments.ShipmentStatus.Released), "released");
        vm.assertEq(info.rejectionCode, bytes32(0), "no reason code on a release");
    }

    function test_noteOfExactly280Bytes() public {
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, true, 0, _note(MAX_NOTE));
        vm.assertEq(uint256(coldChain.shipment(shipmentId).status), uint256(IShipments.ShipmentStatus.Released), "ok");
    }

    function test_RevertWhen_callerIsNeitherReceiverNorQa() public {
        // The party check comes first, as in `release` and `reject`: a stranger learns nothing about the note.
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentNotReceiverOrQa.selector, shipmentId, stranger));
        vm.prank(stranger);
        coldChain.decideWithNote(shipmentId, false, MISSING_DATA, "");
    }

    function test_RevertWhen_notDelivered() public {
        registerDevice(102, 300, keyOf("device 102"));
        uint64 other = startedShipment(102);
        vm.expectRevert(
            abi.encodeWithSelector(IShipments.ShipmentWrongStatus.selector, other, IShipments.ShipmentStatus.InTransit)
        );
        coldChain.decideWithNote(other, false, MISSING_DATA, "too early");
    }

    function test_RevertWhen_alreadyDecided() public {
        vm.prank(receiver);
        coldChain.reject(shipmentId, MISSING_DATA);
        vm.expectRevert(
            abi.encodeWithSelector(
                IShipments.ShipmentWrongStatus.selector,
                shipmentId,
                IShipments.ShipmentStatus.Rejected
            )
        );
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, true, 0, "changed my mind");
    }

    function test_RevertWhen_unknownShipment() public {
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentUnknown.selector, uint64(99)));
        coldChain.decideWithNote(99, true, 0, "note");
    }

    function test_RevertWhen_paused() public {
        coldChain.grantRole(coldChain.GUARDIAN_ROLE(), address(this));
        coldChain.pause();
        vm.expectRevert(abi.encodeWithSelector(Pausable.EnforcedPause.selector));
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, true, 0, "note");
    }

    function test_RevertWhen_noteEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentNoteLengthInvalid.selector, shipmentId, 0, MAX_NOTE));
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, false, MISSING_DATA, "");
    }

    function test_RevertWhen_noteTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(IShipments.ShipmentNoteLengthInvalid.selector, shipmentId, MAX_NOTE + 1, MAX_NOTE)
        );
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, false, MISSING_DATA, _note(MAX_NOTE + 1));
    }

    function test_RevertWhen_rejectionWithoutReason() public {
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentReasonInvalid.selector, shipmentId, bytes32(0)));
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, false, 0, "no code");
    }

    function test_RevertWhen_releaseWithReason() public {
        vm.expectRevert(abi.encodeWithSelector(IShipments.ShipmentReasonInvalid.selector, shipmentId, MISSING_DATA));
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, true, MISSING_DATA, "a release names no reason");
    }

    /// @notice Any note length: accepted exactly from 1 to 280 bytes (replays: test_noteOfExactly280Bytes,
    /// test_RevertWhen_noteEmpty, test_RevertWhen_noteTooLong).
    function testFuzz_noteLength(uint256 length) public {
        length = bound(length, 0, 600);
        bool valid = length >= 1 && length <= MAX_NOTE;
        if (!valid) {
            vm.expectRevert(
                abi.encodeWithSelector(IShipments.ShipmentNoteLengthInvalid.selector, shipmentId, length, MAX_NOTE)
            );
        }
        vm.prank(receiver);
        coldChain.decideWithNote(shipmentId, false, MISSING_DATA, _note(length));
        IShipments.ShipmentStatus expected =
            valid ? IShipments.ShipmentStatus.Rejected : IShipments.ShipmentStatus.Delivered;
        vm.assertEq(uint256(coldChain.shipment(shipmentId).status), uint256(expected), "status");
    }
}
