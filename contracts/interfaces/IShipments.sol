// SPDX-License-Identifier: MIT
pragma solidity 0.8.33;

/// @title IShipments
/// @notice Shipments as digital twins: rule profiles, the status machine, custody and QA disposition.
/// @dev Custody (who physically holds the goods, GS1 EPCIS `possessing_party`) is kept apart from ownership
/// (`owning_party`). Exactly one custodian holds a shipment at any time; the custody history records when each
/// period began, and every excursion second and breach is charged to the period that contains the reading's
/// observation time.
interface IShipments {
    /// @notice Life cycle: Created -> InTransit -> Delivered -> Released | Rejected; Created/InTransit -> Cancelled.
    enum ShipmentStatus {
        None,
        Created,
        InTransit,
        Delivered,
        Released,
        Rejected,
        Cancelled
    }

    /// @notice Temperature rules a shipment is held to. Temperatures in centi-degrees Celsius.
    /// @dev Stored in two slots. A zero duration disables the rule it bounds.
    /// @param minCentiC lower bound of the allowed range; a reading below it is out of range (an excursion)
    /// @param maxCentiC upper bound of the allowed range; a reading above it is out of range
    /// @param absoluteMinCentiC one reading below it is a breach (`AbsoluteLimit`)
    /// @param absoluteMaxCentiC one reading above it is a breach (`AbsoluteLimit`)
    /// @param freezeCentiC freeze threshold: readings at or below it count towards the freeze alarm
    /// @param maxFreezeSeconds continuous time at or below `freezeCentiC` that is a breach (0 = off)
    /// @param maxSingleExcursionSeconds continuous time out of range that is a breach (0 = off)
    /// @param maxCumulativeExcursionSeconds total time out of range that is a breach; never resets (0 = off)
    /// @param adaptationSeconds after the start, readings are recorded but not evaluated for this long
    /// @param maxGapIntervals a gap longer than this many recording intervals is a breach (0 = off)
    /// @param faultFlagMask reading flags that are a breach (`DeviceFault`) when set
    /// @param mktLimitCentiC mean kinetic temperature limit (used when `mktEnabled`)
    /// @param mktMinCoverageSeconds MKT is judged only once readings cover at least this much time
    /// @param mktEnabled whether the MKT limit is a rule of this profile
    struct TemperatureProfile {
        int16 minCentiC;
        int16 maxCentiC;
        int16 absoluteMinCentiC;
        int16 absoluteMaxCentiC;
        int16 freezeCentiC;
        uint32 maxFreezeSeconds;
        uint32 maxSingleExcursionSeconds;
        uint32 maxCumulativeExcursionSeconds;
        uint32 adaptationSeconds;
        uint8 maxGapIntervals;
        uint8 faultFlagMask;
        int16 mktLimitCentiC;
        uint32 mktMinCoverageSeconds;
        bool mktEnabled;
    }

    /// @notice Parameters of a new shipment.
    /// @param receiver party that accepts delivery and decides release or rejection
    /// @param owner party that owns the goods (not necessarily any custodian)
    /// @param profileId rule profile the shipment is held to
    /// @param deviceIds loggers travelling with the shipment (1 .. MAX_DEVICES_PER_SHIPMENT)
    /// @param plannedStartAt planned departure (informational)
    /// @param externalRef business reference, e.g. a GS1 SSCC or an order number
    struct ShipmentParams {
        address receiver;
        address owner;
        uint32 profileId;
        uint64[] deviceIds;
        uint40 plannedStartAt;
        bytes32 externalRef;
    }

    /// @notice Public view of a shipment.
    struct ShipmentInfo {
        ShipmentStatus status;
        address shipper;
        address receiver;
        address owner;
        address custodian;
        uint32 profileId;
        uint40 createdAt;
        uint40 plannedStartAt;
        uint40 startedAt;
        uint40 deliveredAt;
        uint40 decidedAt;
        uint32 custodyPeriods;
        bytes32 externalRef;
        bytes32 rejectionCode;
        uint64[] deviceIds;
    }

    /// @notice One period of custody. Excursion seconds and breach flags are those charged to this period.
    /// @dev One slot: custodian (160) | since (40) | excursionSeconds (32) | breachFlags (16) = 248 bits.
    struct CustodyPeriod {
        address custodian;
        uint40 since;
        uint32 excursionSeconds;
        uint16 breachFlags;
    }

    /// @notice A pending two-step custody offer.
    /// @param to the next custodian
    /// @param deadline last block time at which `to` may accept
    /// @param handoverAt the custody boundary the offer proposes: the offer's block time, or one second after the
    /// latest reading already recorded for the shipment if that is later. While the offer is pending, readings
    /// observed from `handoverAt` on wait (skipped as `CustodyPending`, to be relayed again).
    struct CustodyOffer {
        address to;
        uint40 deadline;
        uint40 handoverAt;
    }

    /// @notice No profile with this id.
    error ProfileUnknown(uint32 profileId);
    /// @notice The profile's bounds are inconsistent; `field` names the first offending rule: "range" (min not
    /// below max, or outside -200.00 .. +80.00 degrees C), "absoluteLimits" (an absolute limit inside the range),
    /// "freezeCentiC" (an enabled freeze threshold at or above the maximum, or below -200.00 degrees C),
    /// "mktLimitCentiC" (off the 0.1 degree grid or outside the MKT table).
    error ProfileInvalid(string field);
    /// @notice No shipment with this id.
    error ShipmentUnknown(uint64 shipmentId);
    /// @notice The shipment's status does not allow this action.
    error ShipmentWrongStatus(uint64 shipmentId, ShipmentStatus status);
    /// @notice A required address is zero.
    error ShipmentPartyZero();
    /// @notice A shipment needs 1 .. MAX_DEVICES_PER_SHIPMENT devices.
    error ShipmentDeviceCountInvalid(uint256 count);
    /// @notice The device is unknown, revoked, listed twice or already travelling with an open shipment.
    error ShipmentDeviceUnavailable(uint64 deviceId);
    /// @notice The device's owner has not approved `shipper` to bind its devices (DeviceRegistry.setShipperApproval).
    error ShipmentDeviceNotApproved(uint64 deviceId, address shipper);
    /// @notice The caller is not the current custodian.
    error CustodyNotCustodian(uint64 shipmentId, address caller);
    /// @notice The next custodian is zero or already the custodian.
    error CustodyRecipientInvalid(uint64 shipmentId, address to);
    /// @notice No pending offer for the caller, or it expired.
    error CustodyOfferInvalid(uint64 shipmentId, address caller);
    /// @notice The handover deadline has passed.
    error CustodyDeadlinePassed(uint64 shipmentId, uint256 deadline);
    /// @notice The next custodian's EIP-712 acceptance signature does not verify.
    error CustodySignatureInvalid(uint64 shipmentId, address to);
    /// @notice The custody history reached MAX_CUSTODY_PERIODS (the last period is kept for the receiver).
    error CustodyHistoryFull(uint64 shipmentId);
    /// @notice The caller is neither the receiver nor holds QA_ROLE.
    error ShipmentNotReceiverOrQa(uint64 shipmentId, address caller);
    /// @notice A decision note is empty or longer than `maxLength` bytes (ShipmentBook.MAX_DECISION_NOTE_BYTES).
    error ShipmentNoteLengthInvalid(uint64 shipmentId, uint256 length, uint256 maxLength);
    /// @notice A noted rejection names no reason code (the zero word), or a noted release names one.
    error ShipmentReasonInvalid(uint64 shipmentId, bytes32 reasonCode);

    /// @notice A rule profile was created.
    event ProfileCreated(uint32 indexed profileId, address indexed creator, TemperatureProfile profile);
    /// @notice A shipment was created; the shipper holds custody from now on.
    event ShipmentCreated(
        uint64 indexed shipmentId,
        address indexed shipper,
        address indexed receiver,
        address owner,
        uint32 profileId,
        uint64[] deviceIds,
        uint40 plannedStartAt,
        bytes32 externalRef
    );
    /// @notice The shipment left: readings observed from `startedAt` on are evaluated.
    event ShipmentStarted(uint64 indexed shipmentId, uint40 startedAt);
    /// @notice The current custodian offered custody to `to` until `deadline`.
    event CustodyOffered(uint64 indexed shipmentId, address indexed from, address indexed to, uint40 deadline);
    /// @notice A pending custody offer was withdrawn.
    event CustodyOfferCancelled(uint64 indexed shipmentId, address indexed from, address indexed to);
    /// @notice Custody passed from `from` to `to`; `periodIndex` is the new period's index, from `since` on.
    event CustodyTransferred(
        uint64 indexed shipmentId,
        address indexed from,
        address indexed to,
        uint32 periodIndex,
        uint40 since
    );
    /// @notice The receiver took custody: readings observed after `deliveredAt` are refused.
    event ShipmentDelivered(uint64 indexed shipmentId, address indexed receiver, uint40 deliveredAt);
    /// @notice The receiver or QA released the goods.
    event ShipmentReleased(uint64 indexed shipmentId, address indexed by);
    /// @notice The receiver or QA rejected the goods, with a business reason code.
    event ShipmentRejected(uint64 indexed shipmentId, address indexed by, bytes32 reasonCode);
    /// @notice The decider's free-text note on the release or rejection emitted just before it, in the same
    /// transaction (UTF-8, at most 280 bytes). Not stored: readers take it from this event.
    event DecisionNoted(uint64 indexed shipmentId, address indexed by, string note);
    /// @notice The shipment was cancelled; its devices are free again.
    event ShipmentCancelled(uint64 indexed shipmentId, address indexed by);

    /// @notice Creates an immutable rule profile. QA role only.
    /// @return profileId the new profile's id (starting at 1)
    function createProfile(TemperatureProfile calldata profile) external returns (uint32 profileId);

    /// @notice Creates a shipment; the caller becomes shipper and first custodian. Shipper role only.
    /// @return shipmentId the new shipment's id (starting at 1)
    function createShipment(ShipmentParams calldata params) external returns (uint64 shipmentId);

    /// @notice Starts a created shipment (status InTransit). Current custodian only.
    function startShipment(uint64 shipmentId) external;

    /// @notice Offers custody to `to` until `deadline` (two-step handover). Current custodian only. The boundary is
    /// fixed now ({CustodyOffer.handoverAt}), not when `to` accepts: neither party picks it alone.
    function offerCustody(uint64 shipmentId, address to, uint40 deadline) external;

    /// @notice Withdraws a pending custody offer. Current custodian only.
    function cancelCustodyOffer(uint64 shipmentId) external;

    /// @notice Accepts a pending custody offer addressed to the caller before its deadline. The new custody period
    /// begins at the offer's `handoverAt`.
    function acceptCustody(uint64 shipmentId) external;

    /// @notice One-transaction handover: the current custodian submits the next custodian's EIP-712
    /// `CustodyAcceptance(uint256 shipmentId,address custodian,uint256 nonce,uint256 deadline)` signature.
    /// @dev `nonce` is the current number of custody periods ({handoverNonce}); ERC-1271 wallets are supported. The
    /// boundary is this transaction's block time, or one second after the latest reading already recorded.
    function transferCustodyWithSignature(
        uint64 shipmentId,
        address to,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Releases a delivered shipment. Receiver or QA role.
    function release(uint64 shipmentId) external;

    /// @notice Rejects a delivered shipment with a reason code. Receiver or QA role.
    /// @param reasonCode a short ASCII code as bytes32 text, e.g. "MISSING_DATA" (docs/protocol.md lists them)
    function reject(uint64 shipmentId, bytes32 reasonCode) external;

    /// @notice {release} (`release_` true, `reasonCode` 0) or {reject} (`release_` false, a non-zero `reasonCode`)
    /// with the decider's free-text note, emitted as {DecisionNoted} right after the decision's event. Receiver or
    /// QA role, like {release} and {reject}; reverts with {ShipmentNoteLengthInvalid} for an empty note or one
    /// over 280 bytes of UTF-8, and with {ShipmentReasonInvalid} for a rejection without a reason code or a release
    /// with one.
    function decideWithNote(uint64 shipmentId, bool release_, bytes32 reasonCode, string calldata note) external;

    /// @notice Cancels a created or in-transit shipment. Current custodian or admin (reverts with
    /// {CustodyNotCustodian}). Readings observed up to the cancellation are still recorded; the devices of a
    /// shipment that had started stay bound to it for 7 days (ShipmentBook.CANCELLED_DEVICE_HOLD_SECONDS).
    function cancelShipment(uint64 shipmentId) external;

    /// @notice A rule profile. Reverts with {ProfileUnknown}.
    function profile(uint32 profileId) external view returns (TemperatureProfile memory);

    /// @notice A shipment's state. Reverts with {ShipmentUnknown}.
    function shipment(uint64 shipmentId) external view returns (ShipmentInfo memory);

    /// @notice The full custody history, oldest first (at most MAX_CUSTODY_PERIODS entries).
    function custodyHistory(uint64 shipmentId) external view returns (CustodyPeriod[] memory);

    /// @notice The pending two-step custody offer, if any.
    function custodyOffer(uint64 shipmentId) external view returns (CustodyOffer memory);

    /// @notice Nonce the next custodian signs for a one-transaction handover.
    function handoverNonce(uint64 shipmentId) external view returns (uint256);
}
