// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

import {IShipments} from "../../contracts/interfaces/IShipments.sol";

/// @notice 2-8 degrees C vaccine profile (USP <659> refrigerated), as VACCINE_PROFILE in test/support/deploy.ts.
function vaccineProfile() pure returns (IShipments.TemperatureProfile memory) {
    return
        IShipments.TemperatureProfile({
            minCentiC: 200,
            maxCentiC: 800,
            absoluteMinCentiC: -500,
            absoluteMaxCentiC: 2500,
            freezeCentiC: -50,
            maxFreezeSeconds: 3600,
            maxSingleExcursionSeconds: 3600,
            maxCumulativeExcursionSeconds: 10 * 3600,
            adaptationSeconds: 600,
            maxGapIntervals: 3,
            faultFlagMask: 0x05,
            mktLimitCentiC: 800,
            mktMinCoverageSeconds: 24 * 3600,
            mktEnabled: true
        });
}
