// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title CISC, the contract information storage contract (PROTOCOL.md steps 1, 3, 6 and 11)
/// @notice Sellers and trusted nodes register their libp2p peer id; nodes also their enclave measurement
/// and prices. Sellers list dataset offers with a usage policy. DTMC, and only DTMC, records each rating a
/// buyer gives a seller together with the trade's result info (hash, size, status; never the result): the
/// seller's rating count and sum in storage, each rating itself only as a `FeedbackRecorded` event (no contract
/// reads it; clients read the log, which costs a fraction of a stored entry).
/// @dev Bounded by constants: peer ids, tags, code-hash and buyer lists have maximum lengths; nothing loops over
/// storage that a payee can grow. DTMC takes a trade from an offer with `offerForTrade` in O(1).
/// Deny by default: an offer allows only its listed code hashes, or any code when the seller chose `anyCode`,
/// or any analysis under a differential-privacy budget when the seller chose `privateMode` (docs/contracts.md
/// "Private datasets"): each trade declares its epsilon, reserved here against the offer's budget when it opens. A
/// trade on an offer with a `maxTrades` is likewise counted (reserved) when it opens. DTMC gives a trade's reservation
/// (epsilon and count) back (`releaseReservations`) only when no enclave can have computed on that seller's data for it.
contract CISC {
    uint256 public constant MAX_PEER_ID_LENGTH = 128;
    uint256 public constant MAX_TAG_LENGTH = 64;
    uint256 public constant MAX_ALLOWED_CODE_HASHES = 16;
    uint256 public constant MAX_ALLOWED_BUYERS = 16;
    uint256 public constant MAX_COMMENT_LENGTH = 280;
    /// @notice Most clamped columns a private offer declares.
    uint256 public constant MAX_CLAMPS = 16;
    /// @notice Epsilon is counted in micro-epsilon: 1 epsilon = EPSILON_UNIT (the enclave takes the same unit).
    uint64 public constant EPSILON_UNIT = 1_000_000;

    struct Seller {
        uint40 registeredAt;
        uint32 ratingCount;
        uint40 ratingSum;
        string peerId;
    }

    struct Node {
        bytes32 measurement;
        uint128 pricePerGas; // wei per unit of enclave gas
        uint64 maxGas; // the largest gas cap the node's enclave runs a task with
        uint40 registeredAt;
        string peerId;
    }

    /// @notice A private offer's bound on one CSV column: every record's value is clamped into [lower, upper] before
    /// any private mechanism sees it (what bounds one record's contribution, the sensitivity). Values are integers
    /// at `decimals` digits of fraction, as the enclave's CSV parser reads a column (12.5 at decimals 2 is 1250).
    struct Clamp {
        uint16 column;
        uint8 decimals;
        int128 lower;
        int128 upper;
    }

    /// @notice What a seller asks for a task over one dataset.
    struct Policy {
        bytes32[] allowedCodeHashes; // the analysis code allowed to run; empty and no anyCode: none
        bool anyCode; // the seller's explicit choice of any code (allowedCodeHashes must then be empty)
        uint64 outputCap; // the largest output (bytes) a trade on this offer may set
        uint64 minOutputPrice; // the least wei per output byte a trade on this offer pays this seller
        address[] allowedBuyers; // the buyers that may open a trade on this offer; empty: any buyer
        uint32 maxTrades; // the most trades this offer joins; 0: no maximum
        uint40 expiresAt; // no trade opens on this offer from this time (unix seconds); 0: never
        bool privateMode; // any analysis, through the enclave's private mechanisms only (no code list, no anyCode)
        uint64 epsilonBudget; // privateMode: the total epsilon of all its trades, in micro-epsilon (> 0); else 0
        Clamp[] clamps; // privateMode: 1..MAX_CLAMPS column bounds (only in the DatasetPrivate event); else none
    }

    struct Offer {
        address seller;
        uint64 size; // bytes
        uint8 allowedCount;
        bool active;
        bool anyCode;
        uint8 buyerCount; // 0: open to any buyer
        uint128 unitPrice; // wei per byte
        uint64 outputCap;
        uint64 minOutputPrice; // wei per output byte, paid to this seller alone (never a share)
        bytes32 commitment;
        bytes32 tagHash; // keccak256(bytes(tag)): what DTMC compares with a trade's tag
        uint32 maxTrades; // 0: no maximum
        uint32 trades; // trades opened on this offer, counted when maxTrades is set, less what DTMC released
        uint40 expiresAt; // 0: never
        bool privateMode;
        uint64 epsilonBudget; // micro-epsilon; 0 unless privateMode
        uint64 epsilonSpent; // micro-epsilon charged by the trades opened on this offer, less what DTMC released
        string tag;
    }


    /// @notice The DTMC this registry trusts for feedback; fixed at deployment.
    address public immutable dtmc;

    mapping(address => Seller) private _sellers;
    mapping(address => Node) private _nodes;
    Offer[] private _offers;
    mapping(uint256 => mapping(bytes32 => bool)) private _allowedCode;
    mapping(uint256 => mapping(address => bool)) private _allowedBuyer;
    /// @dev Per reservation key, keccak256(abi.encode(tradeId, uint256 sellerIndex)), what a trade holds on the offer
    /// of one of its sellers until DTMC releases it: the epsilon it charged to a private offer, and whether it counts
    /// against the offer's maxTrades. One slot per seller whose offer is private or has a maxTrades; a trade on any
    /// other offer writes none.
    mapping(bytes32 => Reservation) private _reservations;

    /// @dev What a trade reserved on one offer (offer ids index `_offers`, far below 2^184); all zero: nothing.
    struct Reservation {
        uint184 offerId;
        uint64 epsilon; // micro-epsilon charged to the offer's budget; 0: none (not a private offer)
        bool counted; // the trade counts against the offer's maxTrades
    }

    event SellerRegistered(address indexed seller, string peerId);
    event NodeRegistered(address indexed node, string peerId, bytes32 indexed measurement, uint128 pricePerGas, uint64 maxGas);
    event DatasetListed(
        uint256 indexed offerId, address indexed seller, bytes32 indexed tagHash, string tag, uint64 size,
        uint128 unitPrice, bytes32 commitment, bytes32[] allowedCodeHashes, uint64 outputCap, uint64 minOutputPrice
    );
    /// @notice A private offer's budget and clamps (emitted with its DatasetListed; no contract reads the clamps).
    event DatasetPrivate(uint256 indexed offerId, uint64 epsilonBudget, Clamp[] clamps);
    /// @notice A trade charged `epsilon` to a private offer's budget; `spent` is the offer's total since listing.
    event PrivacyBudgetCharged(uint256 indexed offerId, uint64 epsilon, uint64 spent);
    /// @notice DTMC gave trade `tradeId`'s `epsilon` back to the offer's budget (no enclave received the seller's data
    /// for it); `spent` is the offer's total after it.
    event PrivacyBudgetReleased(uint256 indexed offerId, bytes32 indexed tradeId, uint64 epsilon, uint64 spent);
    /// @notice DTMC gave trade `tradeId`'s place in the offer's maxTrades back (no enclave received the seller's data
    /// for it); `trades` is the offer's count after it.
    event TradeCountReleased(uint256 indexed offerId, bytes32 indexed tradeId, uint32 trades);
    event DatasetDelisted(uint256 indexed offerId, address indexed seller);
    event FeedbackRecorded(
        address indexed seller, bytes32 indexed tradeId, uint8 score, bytes32 resultHash, uint64 resultSize,
        uint8 status, string comment
    );

    error ZeroAddress();
    error InvalidPeerId();
    error InvalidMeasurement();
    error NotRegisteredSeller(address account);
    error InvalidTag();
    error InvalidOffer();
    error TooManyCodeHashes(uint256 count, uint256 max);
    error TooManyBuyers(uint256 count, uint256 max);
    error InvalidClamps(); // privateMode with no clamps, too many, or one whose lower bound is above its upper
    error EpsilonRequired(uint256 offerId); // a trade on a private offer must declare an epsilon above 0
    /// @notice The trade's epsilon is more than what is left of the offer's budget (micro-epsilon).
    error PrivacyBudgetExceeded(uint256 offerId, uint64 epsilon, uint64 remaining);
    error InvalidPolicy();
    error UnknownOffer(uint256 offerId);
    error NotOfferOwner(uint256 offerId);
    error OfferInactive(uint256 offerId);
    error CodeNotAllowed(uint256 offerId, bytes32 codeHash);
    error BuyerNotAllowed(uint256 offerId, address buyer);
    error OfferExpired(uint256 offerId, uint40 expiresAt);
    error OfferTradesExhausted(uint256 offerId, uint32 maxTrades);
    error OutputCapNotAllowed(uint256 offerId, uint64 outputCap, uint64 allowed);
    error OfferTagMismatch(uint256 offerId, bytes32 tagHash, bytes32 tradeTagHash);
    error OutputPriceBelowMinimum(uint256 offerId, uint256 outputPrice, uint64 minOutputPrice);
    error NotDTMC();
    error CommentTooLong();

    constructor(address dtmc_) {
        if (dtmc_ == address(0)) revert ZeroAddress();
        dtmc = dtmc_;
    }

    // ---- step 1: registration ----

    /// @notice Registers (or updates) the caller as a seller reachable at `peerId`.
    function registerSeller(string calldata peerId) external {
        _checkPeerId(peerId);
        Seller storage s = _sellers[msg.sender];
        if (s.registeredAt == 0) s.registeredAt = uint40(block.timestamp);
        s.peerId = peerId;
        emit SellerRegistered(msg.sender, peerId);
    }

    /// @notice Registers (or updates) the caller as a trusted node: its peer id, its enclave measurement, its prices.
    function registerNode(string calldata peerId, bytes32 measurement, uint128 pricePerGas, uint64 maxGas) external {
        _checkPeerId(peerId);
        if (measurement == bytes32(0)) revert InvalidMeasurement();
        Node storage n = _nodes[msg.sender];
        if (n.registeredAt == 0) n.registeredAt = uint40(block.timestamp);
        n.measurement = measurement;
        n.pricePerGas = pricePerGas;
        n.maxGas = maxGas;
        n.peerId = peerId;
        emit NodeRegistered(msg.sender, peerId, measurement, pricePerGas, maxGas);
    }

    /// @notice Lists a dataset offer of the caller (a registered seller). Returns the new offer id.
    function listDataset(string calldata tag, uint64 size, uint128 unitPrice, bytes32 commitment, Policy calldata policy)
        external
        returns (uint256 offerId)
    {
        if (_sellers[msg.sender].registeredAt == 0) revert NotRegisteredSeller(msg.sender);
        if (bytes(tag).length == 0 || bytes(tag).length > MAX_TAG_LENGTH) revert InvalidTag();
        if (size == 0 || commitment == bytes32(0)) revert InvalidOffer();
        _checkPolicy(policy);
        offerId = _offers.length;
        bytes32 tagHash = keccak256(bytes(tag));
        _store(offerId, tagHash, tag, size, unitPrice, commitment, policy);
        emit DatasetListed(
            offerId, msg.sender, tagHash, tag, size, unitPrice, commitment, policy.allowedCodeHashes, policy.outputCap,
            policy.minOutputPrice
        );
        if (policy.privateMode) emit DatasetPrivate(offerId, policy.epsilonBudget, policy.clamps);
    }

    /// @notice Withdraws an offer: from this block no trade opens on it; trades already open on it are unaffected.
    function delistDataset(uint256 offerId) external {
        Offer storage o = _offer(offerId);
        if (o.seller != msg.sender) revert NotOfferOwner(offerId);
        if (!o.active) revert OfferInactive(offerId);
        o.active = false;
        emit DatasetDelisted(offerId, msg.sender);
    }

    // ---- step 5: DTMC takes a trade from an offer when the trade opens ----

    /// @notice The terms of an active offer for a trade by `buyer` over datasets tagged `tagHash`, running
    /// `codeHash`, with output cap `outputCap`, paying each seller `outputPrice` wei per output byte; reverts
    /// when the offer is under another tag or its policy refuses those terms, and counts the trade against
    /// the offer's maxTrades, kept as `reservation`, keccak256(abi.encode(tradeId, uint256 sellerIndex)), which DTMC
    /// may give back with `releaseReservations` (`reserved`: the offer has a maxTrades, so there is one to give back).
    /// DTMC only: a count anyone could raise would let anyone use up an offer.
    /// A trade without an epsilon: a private offer refuses it (EpsilonRequired).
    function offerForTrade(
        uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice, address buyer,
        bytes32 reservation
    ) external returns (address seller, uint64 size, uint128 unitPrice, bytes32 commitment, bool reserved) {
        Offer storage o;
        (o, reserved) = _takeOffer(offerId, tagHash, codeHash, outputCap, outputPrice, buyer, 0);
        if (reserved) _reservations[reservation] = Reservation(uint184(offerId), 0, true);
        return (o.seller, o.size, o.unitPrice, o.commitment, reserved);
    }

    /// @notice `offerForTrade` for a trade that declares `epsilon` (micro-epsilon): a private offer is charged it
    /// against its budget, and refuses it (PrivacyBudgetExceeded) when it is more than what is left; any other
    /// offer ignores it (it runs the analysis on the records themselves). The charge (with the trade's count when the
    /// offer has a maxTrades) is kept as `reservation`, keccak256(abi.encode(tradeId, uint256 sellerIndex)), which DTMC
    /// may give back with `releaseReservations`. DTMC only: a charge anyone could make would let anyone use up a
    /// budget. Its own function, so a trade without epsilon passes no extra word.
    function offerForPrivateTrade(
        uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice, address buyer,
        uint64 epsilon, bytes32 reservation
    ) external returns (address seller, uint64 size, uint128 unitPrice, bytes32 commitment) {
        (Offer storage o, bool counted) = _takeOffer(offerId, tagHash, codeHash, outputCap, outputPrice, buyer, epsilon);
        _reserve(reservation, offerId, o.privateMode ? epsilon : 0, counted);
        return (o.seller, o.size, o.unitPrice, o.commitment);
    }

    /// @notice Gives back what trade `tradeId` reserved on the offers of its sellers in `sellers` (bit i: seller i):
    /// the epsilon charged to a private offer, and the trade's place in an offer's maxTrades. DTMC calls it for the
    /// sellers that claimed no delivery receipt by the end of the claim window, whose data therefore never entered an
    /// enclave (an enclave runs nothing before every seller has acknowledged its receipt), so no answer can have been
    /// computed on it. Sellers without a reservation are skipped. DTMC only.
    function releaseReservations(bytes32 tradeId, uint8 sellers) external {
        if (msg.sender != dtmc) revert NotDTMC();
        for (uint256 i; sellers >> i != 0; ++i) {
            if ((sellers >> i) & 1 == 0) continue;
            bytes32 key = keccak256(abi.encode(tradeId, i));
            Reservation memory res = _reservations[key];
            if (res.epsilon == 0 && !res.counted) continue;
            delete _reservations[key];
            Offer storage o = _offers[res.offerId];
            if (res.epsilon != 0) {
                uint64 spent = o.epsilonSpent - res.epsilon; // the reservation is part of what was charged
                o.epsilonSpent = spent;
                emit PrivacyBudgetReleased(res.offerId, tradeId, res.epsilon, spent);
            }
            if (res.counted) {
                uint32 trades = o.trades - 1; // the trade is part of the count
                o.trades = trades;
                emit TradeCountReleased(res.offerId, tradeId, trades);
            }
        }
    }

    /// @dev Checks the trade's terms against the offer's policy, charges a private offer's budget, and counts the trade
    /// against the offer's maxTrades if it has one (`counted`); returns the offer. A charge and a count are reserved
    /// from the opening, so trades running at once never exceed the budget or the maximum; the caller records them
    /// (`_reserve`) for `releaseReservations`.
    function _takeOffer(
        uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice, address buyer,
        uint64 epsilon
    ) private returns (Offer storage o, bool counted) {
        if (msg.sender != dtmc) revert NotDTMC();
        o = _offer(offerId);
        if (!o.active) revert OfferInactive(offerId);
        if (o.tagHash != tagHash) revert OfferTagMismatch(offerId, o.tagHash, tagHash);
        // An "any code" offer (the common case) never reads privateMode: private offers are never anyCode.
        if (!o.anyCode) {
            if (o.privateMode) _chargeBudget(o, offerId, epsilon);
            else if (!_allowedCode[offerId][codeHash]) revert CodeNotAllowed(offerId, codeHash);
        }
        if (o.buyerCount != 0 && !_allowedBuyer[offerId][buyer]) revert BuyerNotAllowed(offerId, buyer);
        if (outputCap > o.outputCap) revert OutputCapNotAllowed(offerId, outputCap, o.outputCap);
        if (outputPrice < o.minOutputPrice) revert OutputPriceBelowMinimum(offerId, outputPrice, o.minOutputPrice);
        uint40 expiresAt = o.expiresAt;
        if (expiresAt != 0 && block.timestamp >= expiresAt) revert OfferExpired(offerId, expiresAt);
        // Read with expiresAt (one slot). Like the epsilon, a count comes back only through `releaseReservations`, when
        // the seller's data never reached an enclave: a trade that may have computed on it used one the seller allowed.
        uint32 maxTrades = o.maxTrades;
        if (maxTrades != 0) {
            uint32 trades = o.trades;
            if (trades >= maxTrades) revert OfferTradesExhausted(offerId, maxTrades);
            o.trades = trades + 1;
            counted = true;
        }
    }

    /// @dev Records under `reservation` what a private trade holds on the offer: the epsilon `charged` to its budget and
    /// whether it `counted` against its maxTrades; an offer with neither writes nothing.
    function _reserve(bytes32 reservation, uint256 offerId, uint64 charged, bool counted) private {
        if (charged != 0 || counted) _reservations[reservation] = Reservation(uint184(offerId), charged, counted);
    }

    /// @dev Sequential composition: the epsilons of all trades on one dataset add up, and their sum never exceeds
    /// the budget; a trade's charge is reserved from its opening, so trades running at once never exceed it either.
    /// Only `releaseReservations` gives a charge back, when the seller's data never reached an enclave: a refunded trade's
    /// enclaves that had the data may already have answered (the noisy answers, once computed, may have left the
    /// enclave), so the privacy they cost is spent.
    function _chargeBudget(Offer storage o, uint256 offerId, uint64 epsilon) private {
        if (epsilon == 0) revert EpsilonRequired(offerId);
        uint64 spent = o.epsilonSpent;
        uint64 remaining = o.epsilonBudget - spent; // spent <= budget always holds
        if (epsilon > remaining) revert PrivacyBudgetExceeded(offerId, epsilon, remaining);
        spent += epsilon;
        o.epsilonSpent = spent;
        emit PrivacyBudgetCharged(offerId, epsilon, spent);
    }

    // ---- step 11: feedback, written by DTMC only ----

    /// @notice Records a buyer's rating of a seller with the trade's result info. DTMC only.
    function recordFeedback(
        address seller, bytes32 tradeId, uint8 score, bytes32 resultHash, uint64 resultSize, uint8 status, string calldata comment
    ) external {
        if (msg.sender != dtmc) revert NotDTMC();
        if (bytes(comment).length > MAX_COMMENT_LENGTH) revert CommentTooLong();
        Seller storage s = _sellers[seller];
        s.ratingCount += 1;
        s.ratingSum += score;
        emit FeedbackRecorded(seller, tradeId, score, resultHash, resultSize, status, comment);
    }

    // ---- views for buyers (step 3), sellers and nodes (step 6) ----

    function seller(address account) external view returns (Seller memory) {
        return _sellers[account];
    }

    function node(address account) external view returns (Node memory) {
        return _nodes[account];
    }

    function offer(uint256 offerId) external view returns (Offer memory) {
        return _offer(offerId);
    }

    function offerCount() external view returns (uint256) {
        return _offers.length;
    }

    /// @notice Whether the offer's policy lets `codeHash` run on its data: listed, any code chosen explicitly, or any
    /// code in private mode (through the enclave's private mechanisms only).
    function isCodeAllowed(uint256 offerId, bytes32 codeHash) external view returns (bool) {
        Offer storage o = _offer(offerId);
        return o.anyCode || o.privateMode || _allowedCode[offerId][codeHash];
    }

    /// @notice What is left of a private offer's epsilon budget (micro-epsilon), net of what open trades reserved;
    /// 0 for any other offer.
    function remainingBudget(uint256 offerId) external view returns (uint64) {
        Offer storage o = _offer(offerId);
        return o.epsilonBudget - o.epsilonSpent;
    }

    /// @notice Whether the offer's policy lets `buyer` open a trade on it (an empty list: any buyer).
    function isBuyerAllowed(uint256 offerId, address buyer) external view returns (bool) {
        return _offer(offerId).buyerCount == 0 || _allowedBuyer[offerId][buyer];
    }

    function _offer(uint256 offerId) private view returns (Offer storage) {
        if (offerId >= _offers.length) revert UnknownOffer(offerId);
        return _offers[offerId];
    }

    function _checkPolicy(Policy calldata policy) private view {
        uint256 count = policy.allowedCodeHashes.length;
        if (count > MAX_ALLOWED_CODE_HASHES) revert TooManyCodeHashes(count, MAX_ALLOWED_CODE_HASHES);
        uint256 buyers = policy.allowedBuyers.length;
        if (buyers > MAX_ALLOWED_BUYERS) revert TooManyBuyers(buyers, MAX_ALLOWED_BUYERS);
        // "Any code" and a list would contradict each other; an expiry already past would list a dead offer.
        if ((policy.anyCode && count != 0) || (policy.expiresAt != 0 && policy.expiresAt <= block.timestamp)) {
            revert InvalidPolicy();
        }
        // Private mode is its own code mode, with a budget; any other mode has neither budget nor clamps.
        if (policy.privateMode ? (policy.anyCode || count != 0 || policy.epsilonBudget == 0) : policy.epsilonBudget != 0) {
            revert InvalidPolicy();
        }
        _checkClamps(policy);
    }

    function _checkClamps(Policy calldata policy) private pure {
        uint256 n = policy.clamps.length;
        if (policy.privateMode ? (n == 0 || n > MAX_CLAMPS) : n != 0) revert InvalidClamps();
        for (uint256 i; i < n; ++i) if (policy.clamps[i].lower > policy.clamps[i].upper) revert InvalidClamps();
    }

    function _store(
        uint256 offerId, bytes32 tagHash, string calldata tag, uint64 size, uint128 unitPrice, bytes32 commitment,
        Policy calldata policy
    ) private {
        uint256 count = policy.allowedCodeHashes.length;
        uint256 buyers = policy.allowedBuyers.length;
        Offer storage o = _offers.push();
        o.seller = msg.sender;
        o.size = size;
        o.allowedCount = uint8(count);
        o.active = true;
        o.anyCode = policy.anyCode;
        o.buyerCount = uint8(buyers);
        o.unitPrice = unitPrice;
        o.outputCap = policy.outputCap;
        o.minOutputPrice = policy.minOutputPrice;
        o.commitment = commitment;
        o.tagHash = tagHash;
        // Their slot stays untouched (cheaper) when the offer has neither.
        if (policy.maxTrades != 0) o.maxTrades = policy.maxTrades;
        if (policy.expiresAt != 0) o.expiresAt = policy.expiresAt;
        if (policy.privateMode) {
            o.privateMode = true;
            o.epsilonBudget = policy.epsilonBudget;
        }
        o.tag = tag;
        for (uint256 i; i < count; ++i) _allowedCode[offerId][policy.allowedCodeHashes[i]] = true;
        for (uint256 i; i < buyers; ++i) _allowedBuyer[offerId][policy.allowedBuyers[i]] = true;
    }

    function _checkPeerId(string calldata peerId) private pure {
        if (bytes(peerId).length == 0 || bytes(peerId).length > MAX_PEER_ID_LENGTH) revert InvalidPeerId();
    }
}
