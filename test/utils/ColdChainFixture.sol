// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChain} from "../../contracts/ColdChain.sol";
import {ColdChainLens} from "../../contracts/ColdChainLens.sol";
import {DeviceRegistry} from "../../contracts/DeviceRegistry.sol";
import {IP256Verifier} from "../../contracts/interfaces/IP256Verifier.sol";
import {IShipments} from "../../contracts/interfaces/IShipments.sol";
import {MktTable} from "../../contracts/MktTable.sol";
import {P256Fallback} from "../../contracts/P256Fallback.sol";

import {BatchEncoder} from "./BatchEncoder.sol";
import {vaccineProfile} from "./Profiles.sol";
import {TestBase} from "./TestBase.sol";

/// @title ColdChainFixture
/// @notice Deploys the whole suite (DeviceRegistry, MktTable, P256Fallback, ColdChain, ColdChainLens) with one address
/// per party, the 2-8 degrees C vaccine profile, and helpers to register devices and create shipments.
/// @dev The test contract is admin, device manager and QA; the shipper is a separate address (pranked).
abstract contract ColdChainFixture is TestBase {
    /// @notice A realistic start time (2026-01-01T00:00:00Z) so timestamps are never near zero.
    uint256 internal constant T0 = 1_767_225_600;

    DeviceRegistry internal registry;
    MktTable internal mktTable;
    P256Fallback internal p256Fallback;
    ColdChain internal coldChain;
    ColdChainLens internal lens;
    bytes32 internal domain;
    uint32 internal vaccineProfileId;

    address internal shipper = makeAddr("shipper");
    address internal carrier = makeAddr("carrier");
    address internal hub = makeAddr("hub");
    address internal carrier2 = makeAddr("carrier2");
    address internal receiver = makeAddr("receiver");
    address internal goodsOwner = makeAddr("owner");
    address internal deviceOwner = makeAddr("deviceOwner");
    address internal relayer = makeAddr("relayer");

    /// @notice Deploys the suite at `T0`, grants the roles and creates the vaccine profile.
    function deploySuite() internal {
        vm.warp(T0);
        registry = new DeviceRegistry(address(this));
        registry.grantRole(registry.DEVICE_MANAGER_ROLE(), address(this));
        mktTable = new MktTable();
        p256Fallback = new P256Fallback();
        coldChain = new ColdChain(address(this), registry, address(mktTable), IP256Verifier(address(p256Fallback)));
        lens = new ColdChainLens(coldChain);
        coldChain.grantRole(coldChain.SHIPPER_ROLE(), shipper);
        coldChain.grantRole(coldChain.QA_ROLE(), address(this));
        vaccineProfileId = coldChain.createProfile(vaccineProfile());
        // The device owner lets the shipper bind its loggers (DeviceRegistry.setShipperApproval).
        vm.prank(deviceOwner);
        registry.setShipperApproval(shipper, true);
        domain = BatchEncoder.domainSeparator(address(coldChain));
    }

    /// @notice Registers a secp256k1 device whose key is `privateKey`.
    function registerDevice(uint64 deviceId, uint32 intervalSeconds, uint256 privateKey) internal {
        registry.registerSecp256k1Device(deviceId, deviceOwner, intervalSeconds, vm.addr(privateKey));
    }

    /// @notice Creates a vaccine-profile shipment carrying `deviceIds` (the shipper is its first custodian).
    function createShipment(uint64[] memory deviceIds) internal returns (uint64 shipmentId) {
        vm.prank(shipper);
        shipmentId = coldChain.createShipment(
            IShipments.ShipmentParams({
                receiver: receiver,
                owner: goodsOwner,
                profileId: vaccineProfileId,
                deviceIds: deviceIds,
                plannedStartAt: uint40(vm.getBlockTimestamp()),
                externalRef: keccak256("SSCC 00012345600000000001")
            })
        );
    }

    /// @notice Creates and starts a shipment carrying one device.
    function startedShipment(uint64 deviceId) internal returns (uint64 shipmentId) {
        uint64[] memory ids = new uint64[](1);
        ids[0] = deviceId;
        shipmentId = createShipment(ids);
        vm.prank(shipper);
        coldChain.startShipment(shipmentId);
    }
}
