// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChain} from "./ColdChain.sol";
import {IReadingsInbox} from "./interfaces/IReadingsInbox.sol";
import {IShipments} from "./interfaces/IShipments.sol";
import {MktLib} from "./libraries/MktLib.sol";

/// @title ColdChainLens
/// @notice Read-only helpers over one ColdChain deployment, kept out of ColdChain to leave its 24 KB to the
/// ingestion path: the mean kinetic temperature of a shipment in degrees, from the MKT sums of its condition,
/// and liability views over its custody history.
/// @dev Stateless: any number of lenses may point at a deployment. `sdk/protocol` computes the same value off
/// chain (`onchainMktCentiC`).
contract ColdChainLens {
    /// @notice The deployment this lens reads.
    ColdChain public immutable COLD_CHAIN;
    /// @notice Its MKT factor table.
    address public immutable MKT_TABLE;

    /// @notice The constructor argument is not a contract.
    error ColdChainLensConfigInvalid();

    /// @param coldChain the deployment to read
    constructor(ColdChain coldChain) {
        if (address(coldChain).code.length == 0) revert ColdChainLensConfigInvalid();
        COLD_CHAIN = coldChain;
        MKT_TABLE = coldChain.MKT_TABLE();
    }

    /// @notice Mean kinetic temperature of a shipment's evaluated readings so far (dH/R = 10,000 K), within
    /// 0.051 degrees C of the exact value (see {MktLib}). Reverts with ShipmentUnknown for an unknown shipment.
    /// @return known false until a temperature was evaluated
    /// @return mktCentiC the MKT in centi-degrees C
    function meanKineticTemperature(uint64 shipmentId) external view returns (bool known, int256 mktCentiC) {
        IReadingsInbox.Condition memory c = COLD_CHAIN.condition(shipmentId);
        if (c.mktSeconds == 0) return (false, 0);
        return (true, MktLib.meanKineticCentiC(MKT_TABLE, c.mktWeightedSum, c.mktSeconds));
    }

    /// @notice Who held custody at `timestamp` (the shipper before the first transfer): the last custody period
    /// whose start is not after it. Reverts with ShipmentUnknown for an unknown shipment.
    function custodianAt(uint64 shipmentId, uint40 timestamp) external view returns (address) {
        IShipments.CustodyPeriod[] memory periods = COLD_CHAIN.custodyHistory(shipmentId);
        // Binary search over at most MAX_CUSTODY_PERIODS entries, as the inbox charges them.
        uint256 lo = 0;
        uint256 hi = periods.length;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (periods[mid].since <= timestamp) lo = mid;
            else hi = mid;
        }
        return periods[lo].custodian;
    }

    /// @notice Total excursion seconds charged to `party` over all its custody periods of the shipment.
    /// Reverts with ShipmentUnknown for an unknown shipment.
    function excursionSecondsOf(uint64 shipmentId, address party) external view returns (uint256 total) {
        IShipments.CustodyPeriod[] memory periods = COLD_CHAIN.custodyHistory(shipmentId);
        for (uint256 i = 0; i < periods.length; ++i) {
            if (periods[i].custodian == party) total += periods[i].excursionSeconds;
        }
    }
}
