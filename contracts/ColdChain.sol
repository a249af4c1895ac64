// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IP256Verifier} from "./interfaces/IP256Verifier.sol";
import {MktLib} from "./libraries/MktLib.sol";
import {ReadingsInbox} from "./ReadingsInbox.sol";
import {ShipmentLedger} from "./ShipmentLedger.sol";

/// @title ColdChain
/// @notice Shipment twins, custody, temperature rules and the signed-readings inbox of one deployment.
/// @dev EIP-712 domain: name "ColdChain", version "2", this chain and this address. Devices sign their
/// readings for this domain; see docs/protocol.md.
contract ColdChain is ReadingsInbox {
    /// @notice Default tolerated lead of a reading's observation time over the block time.
    uint32 public constant DEFAULT_MAX_FUTURE_SKEW_SECONDS = 300;

    /// @notice A constructor argument is the zero address, or the MKT table has the wrong size.
    error ColdChainConfigInvalid(string field);

    /// @notice The tolerated future skew of observation times changed.
    event MaxFutureSkewChanged(uint32 previousSeconds, uint32 newSeconds);

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param registry the device registry
    /// @param mktTable the MKT factor table (an {MktTable} deployment)
    /// @param p256Fallback P-256 verifier used where the precompile is missing
    constructor(
        address admin,
        IDeviceRegistry registry,
        address mktTable,
        IP256Verifier p256Fallback
    ) EIP712("ColdChain", "2") ShipmentLedger(registry, mktTable) ReadingsInbox(p256Fallback) {
        if (admin == address(0)) revert ColdChainConfigInvalid("admin");
        if (address(registry).code.length == 0) revert ColdChainConfigInvalid("registry");
        if (mktTable.code.length != MktLib.TABLE_CODE_SIZE) revert ColdChainConfigInvalid("mktTable");
        if (address(p256Fallback).code.length == 0) revert ColdChainConfigInvalid("p256Fallback");
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _maxFutureSkewSeconds = DEFAULT_MAX_FUTURE_SKEW_SECONDS;
    }

    /// @notice Sets how far a reading's observation time may lead the block time. Admin only.
    function setMaxFutureSkewSeconds(uint32 newSeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit MaxFutureSkewChanged(_maxFutureSkewSeconds, newSeconds);
        _maxFutureSkewSeconds = newSeconds;
    }

    /// @notice Pauses every state-changing entry point, including {submitReadings}. Guardian only.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Lifts a pause. Guardian only.
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        _unpause();
    }
}
