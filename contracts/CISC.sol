// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title CISC, the contract information storage contract (PROTOCOL.md steps 1, 3, 6 and 11)
/// @notice Sellers and trusted nodes register their libp2p peer id; nodes also their enclave measurement
/// and prices. Sellers list dataset offers with a usage policy. DTMC, and only DTMC, records each rating a
/// buyer gives a seller together with the trade's result info (hash, size, status; never the result): the
/// seller's rating count and sum in storage, each rating itself only as a `FeedbackRecorded` event (no contract
/// reads it; clients read the log, which costs a fraction of a stored entry).
/// @dev Bounded by constants: peer ids, tags and code-hash lists have maximum lengths; nothing loops over
/// storage that a payee can grow. DTMC reads an offer with `offerForTrade` in O(1).
contract CISC {
    uint256 public constant MAX_PEER_ID_LENGTH = 128;
    uint256 public constant MAX_TAG_LENGTH = 64;
    uint256 public constant MAX_ALLOWED_CODE_HASHES = 16;
    uint256 public constant MAX_COMMENT_LENGTH = 280;

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

    /// @notice What a seller asks for a task over one dataset.
    struct Policy {
        bytes32[] allowedCodeHashes; // empty: any analysis code is allowed
        uint64 outputCap; // the largest output (bytes) a trade on this offer may set
        uint64 minOutputPrice; // the least wei per output byte a trade on this offer pays this seller
    }

    struct Offer {
        address seller;
        uint64 size; // bytes
        uint8 allowedCount;
        bool active;
        uint128 unitPrice; // wei per byte
        uint64 outputCap;
        uint64 minOutputPrice; // wei per output byte, paid to this seller alone (never a share)
        bytes32 commitment;
        bytes32 tagHash; // keccak256(bytes(tag)): what DTMC compares with a trade's tag
        string tag;
    }


    /// @notice The DTMC this registry trusts for feedback; fixed at deployment.
    address public immutable dtmc;

    mapping(address => Seller) private _sellers;
    mapping(address => Node) private _nodes;
    Offer[] private _offers;
    mapping(uint256 => mapping(bytes32 => bool)) private _allowedCode;

    event SellerRegistered(address indexed seller, string peerId);
    event NodeRegistered(address indexed node, string peerId, bytes32 indexed measurement, uint128 pricePerGas, uint64 maxGas);
    event DatasetListed(
        uint256 indexed offerId, address indexed seller, bytes32 indexed tagHash, string tag, uint64 size,
        uint128 unitPrice, bytes32 commitment, bytes32[] allowedCodeHashes, uint64 outputCap, uint64 minOutputPrice
    );
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
    error UnknownOffer(uint256 offerId);
    error NotOfferOwner(uint256 offerId);
    error OfferInactive(uint256 offerId);
    error CodeNotAllowed(uint256 offerId, bytes32 codeHash);
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
        uint256 count = policy.allowedCodeHashes.length;
        if (count > MAX_ALLOWED_CODE_HASHES) revert TooManyCodeHashes(count, MAX_ALLOWED_CODE_HASHES);
        offerId = _offers.length;
        bytes32 tagHash = keccak256(bytes(tag));
        _offers.push(Offer({
            seller: msg.sender,
            size: size,
            allowedCount: uint8(count),
            active: true,
            unitPrice: unitPrice,
            outputCap: policy.outputCap,
            minOutputPrice: policy.minOutputPrice,
            commitment: commitment,
            tagHash: tagHash,
            tag: tag
        }));
        for (uint256 i; i < count; ++i) _allowedCode[offerId][policy.allowedCodeHashes[i]] = true;
        emit DatasetListed(
            offerId, msg.sender, tagHash, tag, size, unitPrice, commitment, policy.allowedCodeHashes, policy.outputCap,
            policy.minOutputPrice
        );
    }

    /// @notice Withdraws an offer; trades already open on it are unaffected.
    function delistDataset(uint256 offerId) external {
        Offer storage o = _offer(offerId);
        if (o.seller != msg.sender) revert NotOfferOwner(offerId);
        if (!o.active) revert OfferInactive(offerId);
        o.active = false;
        emit DatasetDelisted(offerId, msg.sender);
    }

    // ---- step 5: DTMC reads an offer when a trade opens ----

    /// @notice The terms of an active offer for a trade over datasets tagged `tagHash`, running `codeHash`,
    /// with output cap `outputCap`, paying each seller `outputPrice` wei per output byte; reverts when the
    /// offer is under another tag or its policy refuses those terms.
    function offerForTrade(uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice)
        external
        view
        returns (address seller, uint64 size, uint128 unitPrice, bytes32 commitment)
    {
        Offer storage o = _offer(offerId);
        if (!o.active) revert OfferInactive(offerId);
        if (o.tagHash != tagHash) revert OfferTagMismatch(offerId, o.tagHash, tagHash);
        if (o.allowedCount != 0 && !_allowedCode[offerId][codeHash]) revert CodeNotAllowed(offerId, codeHash);
        if (outputCap > o.outputCap) revert OutputCapNotAllowed(offerId, outputCap, o.outputCap);
        if (outputPrice < o.minOutputPrice) revert OutputPriceBelowMinimum(offerId, outputPrice, o.minOutputPrice);
        return (o.seller, o.size, o.unitPrice, o.commitment);
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

    /// @notice Whether the offer's policy lets `codeHash` run on its data (an empty list allows any code).
    function isCodeAllowed(uint256 offerId, bytes32 codeHash) external view returns (bool) {
        return _offer(offerId).allowedCount == 0 || _allowedCode[offerId][codeHash];
    }

    function _offer(uint256 offerId) private view returns (Offer storage) {
        if (offerId >= _offers.length) revert UnknownOffer(offerId);
        return _offers[offerId];
    }

    function _checkPeerId(string calldata peerId) private pure {
        if (bytes(peerId).length == 0 || bytes(peerId).length > MAX_PEER_ID_LENGTH) revert InvalidPeerId();
    }
}
