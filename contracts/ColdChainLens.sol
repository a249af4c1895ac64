// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {ColdChain} from "./ColdChain.sol";
import {IReadingsInbox} from "./interfaces/IReadingsInbox.sol";
import {MktLib} from "./libraries/MktLib.sol";

/// @title ColdChainLens
/// @notice Read-only helpers over one ColdChain deployment, kept out of ColdChain to leave its 24 KB to the
/// ingestion path: the mean kinetic temperature of a shipment in degrees, from the MKT sums of its condition.
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
}
