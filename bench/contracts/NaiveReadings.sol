// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title NaiveReadings
/// @notice Benchmark reference only, never deployed for real: the design most published cold-chain projects
/// use. One transaction per reading, each reading stored as a struct in an ever-growing array, an
/// eth_sign-style signature check and a threshold check. `bench/gas.ts` measures it beside ColdChain.
contract NaiveReadings {
    struct Reading {
        uint256 observedAt;
        int256 temperature;
        address device;
        bool violation;
    }

    /// @notice The reading is not signed by a registered device.
    error NaiveUnknownDevice(address signer);

    /// @notice A reading was stored.
    event ReadingAdded(uint256 indexed shipmentId, address indexed device, int256 temperature, uint256 observedAt);

    mapping(address device => bool) public registered;
    mapping(uint256 shipmentId => Reading[]) public readings;
    int256 public constant MAX_TEMPERATURE = 800;
    int256 public constant MIN_TEMPERATURE = 200;

    /// @notice Registers a device address (no access control: a benchmark).
    function register(address device) external {
        registered[device] = true;
    }

    /// @notice Stores one signed reading.
    function addReading(uint256 shipmentId, int256 temperature, uint256 observedAt, bytes calldata signature) external {
        bytes32 digest = MessageHashUtils.toEthSignedMessageHash(
            keccak256(abi.encodePacked(shipmentId, temperature, observedAt))
        );
        address device = ECDSA.recover(digest, signature);
        if (!registered[device]) revert NaiveUnknownDevice(device);
        bool violation = temperature > MAX_TEMPERATURE || temperature < MIN_TEMPERATURE;
        readings[shipmentId].push(Reading(observedAt, temperature, device, violation));
        emit ReadingAdded(shipmentId, device, temperature, observedAt);
    }
}
