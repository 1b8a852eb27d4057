// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice What DTMC needs from CISC.
interface ICISC {
    function dtmc() external view returns (address);
    function offerForTrade(
        uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice, address buyer,
        bytes32 reservation
    ) external returns (address seller, uint64 size, uint128 unitPrice, bytes32 commitment, bool reserved);
    function offerForPrivateTrade(
        uint256 offerId, bytes32 tagHash, bytes32 codeHash, uint64 outputCap, uint256 outputPrice, address buyer,
        uint64 epsilon, bytes32 reservation
    ) external returns (address seller, uint64 size, uint128 unitPrice, bytes32 commitment);
    function releaseReservations(bytes32 tradeId, uint8 sellers) external;
    function recordFeedback(
        address seller, bytes32 tradeId, uint8 score, bytes32 resultHash, uint64 resultSize, uint8 status, string calldata comment
    ) external;
}

/// @title DTMC, the data trading management contract (PROTOCOL.md steps 5, 9 and 11; formats in docs/protocol.md)
/// @notice Escrow, attestation check, result consensus, payment, refunds and feedback of SDTE trades.
/// A buyer opens a trade with a deposit equal to the sum of its caps, the sellers' CISC offers and the chosen
/// nodes with their enclave quotes (checked here against the attestation root and the accepted measurements).
/// Each node first commits to its enclave's signed ResultInfo (`commitResult`), then reveals it (`submitResult`)
/// once every node has committed or COMMIT_WINDOW has passed since the first commitment: a result is public only
/// after commitments close, so no node can copy another's. A strict majority of identical results is final:
/// sellers and the majority's nodes are credited within their caps and the rest goes back to the buyer; without
/// one the buyer gets everything back except the sellers' data fees, which are held for CLAIM_WINDOW: a seller
/// holding an attested enclave's delivery receipt claims its fee (`claimDelivery`), the rest then goes to the buyer
/// (`releaseUnclaimed`). A seller's decline of an open trade holds the node fees for DECLINE_NODE_CLAIM_WINDOW, paid
/// to a node showing the decliner's acknowledgement of its receipt (`claimRun`). A node is paid a flat min(nodePrice * gasCap, nodeCap): the gas a run used never reaches
/// the chain (it depends on the data), and the result hash is salted by the buyer. A trade settles as soon as its outcome cannot change (see `finalize`), at the latest
/// after its deadline, which is at most MAX_TRADE_DURATION after opening. Payouts are sent at once (push, with the
/// 2,300-gas stipend); a payee that refuses the transfer is credited instead and withdraws it (pull).
/// Every signature DTMC checks is over a digest that holds block.chainid and this contract's address, so a
/// quote or result signed for one deployment is worthless on any other.
/// @dev Every loop is bounded by MAX_SELLERS or MAX_NODES. Results are grouped as they arrive, so `finalize`
/// never searches. One trade occupies 2 slots (the second the hash of its Facts, which hold its nodes), nothing per
/// seller, 1 per node once it commits (its commitment) and 2 per distinct result.
contract DTMC {
    /// @notice Most sellers in one trade (the rated-sellers bitmask is a uint8).
    uint256 public constant MAX_SELLERS = 8;
    /// @notice Most nodes in one trade (the node bitmasks are uint16).
    uint256 public constant MAX_NODES = 9;
    /// @notice Latest deadline a trade may set, in seconds after the block that opens it: the longest a buyer
    /// can keep sellers' and nodes' pay in escrow (mirrored in contracts/client.ts).
    uint256 public constant MAX_TRADE_DURATION = 7 days;
    /// @notice Largest deposit of one trade (it is stored in 96 bits; about 79 billion ether).
    uint256 public constant MAX_DEPOSIT = type(uint96).max;
    bytes32 public constant QUOTE_TAG = keccak256("SDTE.Quote.v3");
    bytes32 public constant RESULT_TAG = keccak256("SDTE.ResultInfo.v3");
    /// @notice Domain tag of an enclave's delivery receipt (docs/protocol.md "Delivery receipts").
    bytes32 public constant RECEIPT_TAG = keccak256("SDTE.DeliveryReceipt.v1");
    /// @notice How long after a refund (or a settlement on "input invalid") sellers may claim their data fee with
    /// a delivery receipt; after it the unclaimed fees go back to the buyer (mirrored in contracts/client.ts).
    uint256 public constant CLAIM_WINDOW = 3 days;
    /// @notice How long after a seller declined an open trade (no node committed) its nodes may claim their fee with
    /// the decliner's acknowledgement of their delivery receipt (`claimRun`); after it the unclaimed node fees go
    /// back to the buyer (`releaseUnclaimed`). Short: a buyer refused honestly (the seller never acknowledged a
    /// receipt, so no node can claim) gets its node fees back within the hour; a node that ran holds the ack from
    /// before the decline and only has to see the `TradeDeclined` event and send one transaction, which a daemon
    /// polling every few seconds does in well under a minute (mirrored in contracts/client.ts).
    uint256 public constant DECLINE_NODE_CLAIM_WINDOW = 1 hours;
    /// @notice Domain tag of a seller's acknowledgement of a delivery receipt (docs/protocol.md "Delivery receipts").
    bytes32 public constant RECEIPT_ACK_TAG = keccak256("SDTE.ReceiptAck.v1");
    /// @notice ResultInfo.status "input invalid": the final group found a seller's signed data broken.
    uint8 public constant STATUS_INPUT_INVALID = 5;
    /// @notice How long after a trade's first commitment the other nodes may still commit; reveals open at its
    /// end, or as soon as every node has committed (mirrored in contracts/client.ts).
    uint256 public constant COMMIT_WINDOW = 10 minutes;
    /// @notice Highest ResultInfo.status (6, internal error).
    uint8 public constant MAX_STATUS = 6;
    /// @dev secp256k1 n / 2: signatures with a larger s are malleable twins and refused.
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    enum State { None, Open, Settled, Refunded }

    /// @notice A buyer's terms for one trade. Prices and caps in wei; output sizes in bytes.
    struct Terms {
        bytes32 salt; // tradeId = keccak256(abi.encode(buyer, salt))
        bytes32 tagHash; // keccak256 of the demand's dataset tag: every offer must be listed under it
        bytes32 codeHash; // keccak256 of the analysis runtime bytecode
        uint40 deadline; // unix seconds, at most MAX_TRADE_DURATION ahead; results are accepted up to and including it
        uint96 sellerCap; // most a seller is paid for its data (the output fee comes on top)
        uint96 nodePrice; // wei per unit of enclave gas
        uint96 nodeCap; // most a node is paid
        uint96 outputPrice; // wei per output byte, paid to each seller (at least each offer's minOutputPrice)
        uint64 outputCap; // most output bytes
        uint64 gasCap; // the enclave gas every node runs the analysis with, exactly; a node is paid nodePrice * gasCap
        uint64 epsilon; // micro-epsilon reserved on every private offer of the trade (CISC refuses 0 there); else 0
    }

    /// @notice An attestation quote, docs/protocol.md.
    struct Quote {
        bytes32 measurement;
        address enclave;
        bytes32 taskId;
        bytes32 nonce;
        bytes signature;
    }

    struct NodeInput {
        address payee; // the node's account, credited when it is in the final group
        Quote quote;
    }

    /// @notice What a node's enclave signs with its task key, docs/protocol.md.
    struct ResultInfo {
        bytes32 tradeId;
        bytes32 taskId;
        bytes32 inputHash;
        bytes32 resultHash; // keccak256(resultSalt ‖ output): the salt is the buyer's, given to the enclaves only
        uint64 resultSize;
        uint8 status;
    }

    /// @notice What a trade fixes at opening and only later calls read. DTMC stores just its keccak256
    /// (`Trade.factsHash`): the calls that need it (commitResult, submitResult, finalize, claimDelivery,
    /// releaseUnclaimed, rate) pass it in calldata and it must hash to the stored word (`FactsMismatch`);
    /// contracts/client.ts rebuilds it from `TradeOpened`, `TradeNode` and `TradeSeller`. Opening fills three trade
    /// slots, two per node and one per seller less (about 66,000 + 44,200 per node + 22,100 per seller) for a little
    /// calldata per call.
    struct Facts {
        address buyer;
        uint96 outputPrice;
        uint96 nodeFee; // min(nodePrice * gasCap, nodeCap): what each node of the final group is paid
        uint96 deposit; // at most MAX_DEPOSIT
        bytes32 codeHash;
        bytes32 inputHash;
        NodeRef[] nodes; // in the trade's node order
        Party[] sellers; // in the trade's seller order
    }

    /// @notice A node of a trade: the account it is paid to (and commits from) and its attested enclave.
    struct NodeRef {
        address payee;
        address enclave;
    }

    /// @dev Two slots. The first holds everything a commitment or a reveal reads or writes, so commitResult touches
    /// one trade slot and a reveal two; the second is the hash of the trade's Facts.
    struct Trade {
        State state;
        uint8 nSellers;
        uint8 nNodes;
        uint8 nResults;
        uint8 nCommits;
        uint8 nGroups;
        uint8 leader; // index of the largest group so far (the first to reach its size)
        uint8 ratedMask;
        uint16 submittedMask;
        uint16 committedMask;
        uint40 deadline;
        uint40 commitStart; // time of the first commitment
        uint64 outputCap;
        bool reserved; // CISC holds a reservation (epsilon, trade count) for a seller: the unclaimed ones' go back on release
        bytes32 factsHash; // keccak256(abi.encode(Facts))
    }

    struct Party {
        address account;
        uint96 fee; // a seller's data fee: min(unitPrice * size, sellerCap)
    }

    /// @notice Identical results: same key = keccak256(abi.encode(resultHash, resultSize, status)) (every result's
    /// inputHash is the trade's). The view's form; storage keeps a GroupSlot.
    struct Group {
        bytes32 key;
        bytes32 resultHash;
        uint64 resultSize;
        uint8 status;
        uint8 count;
        uint16 members; // bit i: node i reported this result
    }

    /// @dev A group in two slots: (resultHash, resultSize + status) identify it, so its key is never stored (it is
    /// recomputed for the events and the view).
    struct GroupSlot {
        bytes32 resultHash;
        uint64 resultSize;
        uint8 status;
        uint8 count;
        uint16 members;
    }

    /// @notice Data fees held for delivery claims after a refund or an "input invalid" settlement, and after an open
    /// trade's decline the nodes' fees held for run claims (`claimRun`). One slot.
    struct Claims {
        uint40 until; // last second a claim is accepted; unclaimed fees go to the buyer after it
        uint8 held; // bit i: seller i's data fee is held (not yet claimed nor released)
        uint40 nodeUntil; // last second a node of a declined open trade may claim its fee
        uint16 nodesHeld; // bit i: node i's fee is held for a run claim (not yet claimed nor released)
        uint8 decliner; // the seller whose decline refunded the open trade: its acknowledgement is what a node shows
    }

    /// @dev payee and enclave are in the Facts (the client fills them in from `TradeNode`).
    struct NodeView {
        bool committed;
        bool submitted;
        uint8 group; // index into TradeView.groups when submitted
    }

    /// @dev Without the Facts (the client fills them in from `TradeOpened`) and the node terms.
    struct TradeView {
        State state;
        uint40 deadline;
        uint8 nResults;
        uint8 ratedMask;
        uint8 leader;
        uint64 outputCap;
        uint8 nCommits;
        uint40 commitStart;
        NodeView[] nodes;
        Group[] groups;
    }

    ICISC public immutable cisc;
    address public admin;
    address public pendingAdmin;
    /// @notice The simulated attestation service's key: every quote must recover to it.
    address public attestationRoot;
    mapping(bytes32 => bool) public acceptedMeasurement;
    /// @notice Wei of payouts a payee refused at settlement (its receive hook reverted or needed more than the
    /// stipend), withdrawn with `withdraw`.
    mapping(address => uint256) public balanceOf;

    mapping(bytes32 => Trade) private _trades;
    /// @dev Per trade, each node's result commitment (the one slot a node fills, when it commits).
    mapping(bytes32 => bytes32[MAX_NODES]) private _commitments;
    mapping(bytes32 => GroupSlot[MAX_NODES]) private _groups;
    /// @notice Per trade: the claim window and which sellers' data fees are still held for it; after an open trade's
    /// decline also the node claim window, which nodes' fees are still held and the decliner.
    mapping(bytes32 => Claims) public claims;

    event TradeOpened(
        bytes32 indexed tradeId, address indexed buyer, bytes32 indexed codeHash, uint40 deadline, uint256 deposit,
        bytes32 inputHash, uint96 nodePrice, uint96 nodeCap, uint96 outputPrice, uint64 outputCap, uint64 gasCap
    );
    event TradeSeller(
        bytes32 indexed tradeId, address indexed seller, uint256 indexed offerId, uint8 index, uint96 fee, bytes32 commitment
    );
    /// @notice The trade declared `epsilon` (micro-epsilon): emitted only then, so a trade without one pays nothing
    /// for it; nodes read it here (DTMC does not store it) and give it to their enclaves.
    event TradePrivate(bytes32 indexed tradeId, uint64 epsilon);
    event TradeNode(
        bytes32 indexed tradeId, address indexed payee, address indexed enclave, uint8 index, bytes32 measurement, bytes32 taskId
    );
    event ResultCommitted(bytes32 indexed tradeId, uint8 indexed node, bytes32 commitment);
    event ResultSubmitted(
        bytes32 indexed tradeId, uint8 indexed node, bytes32 indexed groupKey, bytes32 resultHash, uint64 resultSize, uint8 status
    );
    event TradeSettled(
        bytes32 indexed tradeId, bytes32 indexed groupKey, bytes32 resultHash, uint64 resultSize, uint8 status,
        uint8 agreeing, uint256 buyerRefund
    );
    event TradeRefunded(bytes32 indexed tradeId, uint256 amount, uint8 results);
    /// @notice Data fees held for delivery claims until `until` (refund or "input invalid" settlement).
    event FeesHeld(bytes32 indexed tradeId, uint256 amount, uint40 until);
    event DeliveryClaimed(bytes32 indexed tradeId, address indexed seller, uint8 index, uint8 node, uint256 fee);
    event UnclaimedReleased(bytes32 indexed tradeId, uint256 amount);
    /// @notice An open trade's decline holds every node's fee for run claims until `until`.
    event NodeFeesHeld(bytes32 indexed tradeId, uint256 amount, uint40 until);
    event RunClaimed(bytes32 indexed tradeId, uint8 indexed node, address payee, uint256 fee);
    /// @notice Seller `index` declined the trade: its data fee `fee` went back to the buyer, its reservation to its offer.
    event TradeDeclined(bytes32 indexed tradeId, address indexed seller, uint8 index, uint256 fee);
    /// @notice `account` was paid `amount` for the trade: `sent` at once, or (false) credited to `balanceOf` because the
    /// send failed, for `withdraw`.
    event Credited(address indexed account, bytes32 indexed tradeId, uint256 amount, bool sent);
    event Withdrawn(address indexed account, uint256 amount);
    event AttestationRootChanged(address indexed previous, address indexed root);
    event MeasurementSet(bytes32 indexed measurement, bool accepted);
    event AdminTransferStarted(address indexed admin, address indexed pending);
    event AdminTransferred(address indexed previous, address indexed admin);

    // administration
    error NotAdmin();
    error NotPendingAdmin();
    error ZeroAddress();
    error CiscNotBound();
    // openTrade
    error BadSellerCount(uint256 count);
    error BadNodeCount(uint256 count);
    error DeadlineNotInFuture(uint256 deadline);
    error DeadlineTooFar(uint256 deadline, uint256 latest);
    error DepositMismatch(uint256 required, uint256 sent);
    error DepositTooLarge(uint256 deposit, uint256 max);
    error ZeroGasCap();
    error TradeExists(bytes32 tradeId);
    error DuplicateOffer(uint256 offerId);
    error DuplicateEnclave(address enclave);
    error QuoteCodeHashMismatch(uint256 node); // the quote's taskId is not bound to this (trade, codeHash, enclave)
    error MeasurementNotAccepted(uint256 node, bytes32 measurement);
    error QuoteNotFromRoot(uint256 node);
    error InvalidSignature(); // not 65 bytes, v not 27/28, high s, or unrecoverable
    // commitResult, submitResult
    error NotNodePayee(uint256 node); // only the node's payee commits for it (nobody can block a node's commitment)
    error AlreadyCommitted(uint256 node);
    error ZeroCommitment();
    error CommitPhaseClosed(); // every node committed, or COMMIT_WINDOW passed: results may be public now
    error RevealTooEarly(uint256 opensAt); // opensAt: commitStart + COMMIT_WINDOW (0: nobody committed yet)
    error NotCommitted(uint256 node);
    error CommitmentMismatch(uint256 node);
    error UnknownTrade(bytes32 tradeId);
    error FactsMismatch(bytes32 tradeId); // the Facts passed do not hash to the trade's factsHash
    error AlreadyFinalized(bytes32 tradeId);
    error ResultAfterDeadline(uint256 deadline);
    error UnknownNode(uint256 node);
    error AlreadySubmitted(uint256 node);
    error WrongTask(uint256 node);
    error NotAttestedEnclave(uint256 node);
    error InputHashMismatch(bytes32 expected, bytes32 reported);
    error InvalidResultInfo();
    error PayoutAboveCap(uint256 resultSize, uint256 outputCap); // an output fee above outputPrice * outputCap
    // finalize, withdraw, rate
    error FinalizeTooEarly(uint256 deadline);
    error NothingToWithdraw();
    error WithdrawFailed();
    error NotBuyer(bytes32 tradeId);
    error TradeNotSettled(bytes32 tradeId);
    error UnknownSeller(uint256 index);
    error AlreadyRated(bytes32 tradeId, uint256 index);
    error InvalidScore(uint8 score);
    // claimDelivery, releaseUnclaimed
    error NothingHeld(bytes32 tradeId, uint256 index); // no fee held for this seller (paid, claimed, released or not closed)
    error ClaimWindowClosed(uint256 until);
    error ClaimWindowOpen(uint256 until);
    error CommitmentsMismatch(); // the commitments given do not hash to the trade's inputHash
    error ReceiptNotFromFinalGroup(uint256 node); // after an "input invalid" settlement only the final group's receipts count
    // declineTrade
    error NotSeller(bytes32 tradeId, uint256 index); // only seller `index`'s account declines for it
    error DeclineTooLate(bytes32 tradeId); // a node committed a result: an enclave ran on every seller's data
    // claimRun
    error NodeFeeNotHeld(bytes32 tradeId, uint256 node); // no fee held for this node (no open decline, claimed, released)
    error NotDeclinerAck(uint256 node); // the signature is not the decliner's over its ack of this node's receipt

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    /// @param cisc_ the CISC deployed with this contract's address as its `dtmc`
    /// @param root the attestation root (the simulated attestation service's address)
    /// @param measurements the enclave measurements accepted from the start
    constructor(ICISC cisc_, address root, bytes32[] memory measurements) {
        if (address(cisc_) == address(0) || root == address(0)) revert ZeroAddress();
        if (cisc_.dtmc() != address(this)) revert CiscNotBound();
        cisc = cisc_;
        admin = msg.sender;
        attestationRoot = root;
        emit AdminTransferred(address(0), msg.sender);
        emit AttestationRootChanged(address(0), root);
        for (uint256 i; i < measurements.length; ++i) {
            acceptedMeasurement[measurements[i]] = true;
            emit MeasurementSet(measurements[i], true);
        }
    }

    // ---- administration: the attestation root and the accepted measurements ----

    function setAttestationRoot(address root) external onlyAdmin {
        if (root == address(0)) revert ZeroAddress();
        emit AttestationRootChanged(attestationRoot, root);
        attestationRoot = root;
    }

    function setMeasurement(bytes32 measurement, bool accepted) external onlyAdmin {
        acceptedMeasurement[measurement] = accepted;
        emit MeasurementSet(measurement, accepted);
    }

    /// @notice First step of handing the admin role over; the new admin completes it with `acceptAdmin`.
    function transferAdmin(address next) external onlyAdmin {
        pendingAdmin = next;
        emit AdminTransferStarted(msg.sender, next);
    }

    function acceptAdmin() external {
        if (msg.sender != pendingAdmin || msg.sender == address(0)) revert NotPendingAdmin();
        emit AdminTransferred(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    // ---- step 5: escrow ----

    /// @notice Opens a trade. `msg.value` must equal
    /// sellers * (sellerCap + outputPrice * outputCap) + nodes * nodeCap exactly.
    function openTrade(Terms calldata terms, uint256[] calldata offerIds, NodeInput[] calldata nodes)
        external
        payable
        returns (bytes32 tradeId)
    {
        uint256 ns = offerIds.length;
        uint256 nn = nodes.length;
        if (ns == 0 || ns > MAX_SELLERS) revert BadSellerCount(ns);
        if (nn == 0 || nn > MAX_NODES) revert BadNodeCount(nn);
        if (terms.deadline <= block.timestamp) revert DeadlineNotInFuture(terms.deadline);
        if (terms.gasCap == 0) revert ZeroGasCap();
        if (terms.deadline > block.timestamp + MAX_TRADE_DURATION) {
            revert DeadlineTooFar(terms.deadline, block.timestamp + MAX_TRADE_DURATION);
        }
        uint256 required = ns * (terms.sellerCap + uint256(terms.outputPrice) * terms.outputCap) + nn * terms.nodeCap;
        if (msg.value != required) revert DepositMismatch(required, msg.value);
        if (required > MAX_DEPOSIT) revert DepositTooLarge(required, MAX_DEPOSIT);

        tradeId = keccak256(abi.encode(msg.sender, terms.salt));
        Trade storage t = _trades[tradeId];
        if (t.state != State.None) revert TradeExists(tradeId);
        t.deadline = terms.deadline;
        t.nSellers = uint8(ns);
        t.nNodes = uint8(nn);
        t.state = State.Open;
        t.outputCap = terms.outputCap;
        bytes32 inputHash = _addParties(t, tradeId, terms, offerIds, nodes);
        _emitOpened(tradeId, terms, inputHash);
        if (terms.epsilon != 0) {
            t.reserved = true; // its private offers reserved its epsilon
            emit TradePrivate(tradeId, terms.epsilon);
        }
    }

    /// @dev Adds the sellers and nodes (checking offers and quotes), stores the Facts' hash, returns the inputHash.
    function _addParties(
        Trade storage t, bytes32 tradeId, Terms calldata terms, uint256[] calldata offerIds, NodeInput[] calldata nodes
    ) private returns (bytes32 inputHash) {
        Party[] memory sellers;
        (inputHash, sellers) = _addSellers(tradeId, terms, offerIds);
        t.factsHash = _factsHashOf(terms, inputHash, _addNodes(tradeId, terms.codeHash, nodes), sellers);
    }

    /// @dev keccak256 of the trade's Facts: what later calls pass back.
    function _factsHashOf(Terms calldata terms, bytes32 inputHash, NodeRef[] memory nodes, Party[] memory sellers)
        private
        view
        returns (bytes32)
    {
        uint256 nodeFee = uint256(terms.nodePrice) * terms.gasCap;
        if (nodeFee > terms.nodeCap) nodeFee = terms.nodeCap;
        bytes memory encoded = abi.encode(
            Facts(msg.sender, terms.outputPrice, uint96(nodeFee), uint96(msg.value), terms.codeHash, inputHash, nodes, sellers)
        );
        bytes32 h;
        // The tuple's own encoding: abi.encode puts one offset word (0x20) before a dynamic tuple.
        assembly ("memory-safe") {
            h := keccak256(add(encoded, 64), sub(mload(encoded), 32))
        }
        return h;
    }

    /// @dev Hashes the Facts as they are in calldata. Every function that takes them has them as its last argument,
    /// so their standard encoding runs from their offset to the end of the calldata; hashing those bytes is as
    /// strict as re-encoding them with abi.encode (equal bytes decode to equal Facts; any other bytes, trailing
    /// ones included, are a FactsMismatch) and spares the re-encoding (about 2,400 gas per call with 3 nodes and 1 seller).
    function _checkFacts(bytes32 tradeId, Trade storage t, Facts calldata facts) private view {
        bytes32 h;
        assembly ("memory-safe") {
            let len := sub(calldatasize(), facts)
            let ptr := mload(0x40)
            calldatacopy(ptr, facts, len)
            h := keccak256(ptr, len)
        }
        if (h != t.factsHash) revert FactsMismatch(tradeId);
    }

    function _emitOpened(bytes32 tradeId, Terms calldata terms, bytes32 inputHash) private {
        emit TradeOpened(
            tradeId, msg.sender, terms.codeHash, terms.deadline, msg.value, inputHash, terms.nodePrice, terms.nodeCap,
            terms.outputPrice, terms.outputCap, terms.gasCap
        );
    }

    /// @dev Reads each offer from CISC (which enforces its policy); returns the trade's inputHash and its sellers for
    /// the Facts (nothing is stored per seller).
    function _addSellers(bytes32 tradeId, Terms calldata terms, uint256[] calldata offerIds)
        private
        returns (bytes32, Party[] memory sellers)
    {
        bytes32[] memory commitments = new bytes32[](offerIds.length);
        sellers = new Party[](offerIds.length);
        for (uint256 i; i < offerIds.length; ++i) {
            for (uint256 j; j < i; ++j) if (offerIds[j] == offerIds[i]) revert DuplicateOffer(offerIds[i]);
            commitments[i] = _addSeller(tradeId, terms, i, offerIds[i], sellers);
        }
        return (keccak256(abi.encode(commitments)), sellers);
    }

    function _addSeller(bytes32 tradeId, Terms calldata terms, uint256 i, uint256 offerId, Party[] memory sellers)
        private
        returns (bytes32 commitment)
    {
        address seller;
        uint256 fee;
        (seller, fee, commitment) = _takeOffer(tradeId, terms, i, offerId);
        sellers[i] = Party(seller, uint96(fee));
        emit TradeSeller(tradeId, seller, offerId, uint8(i), uint96(fee), commitment);
    }

    /// @dev The offer from CISC (which enforces its policy) and the seller's data fee, min(unitPrice * size, sellerCap).
    /// CISC keeps what the trade reserves on the offer (epsilon, a place in its maxTrades) under the key of the trade's
    /// seller, keccak256(abi.encode(tradeId, uint256 index)); a trade it reserved on is marked `reserved` (a private
    /// one by `openTrade`).
    function _takeOffer(bytes32 tradeId, Terms calldata terms, uint256 i, uint256 offerId)
        private
        returns (address seller, uint256 fee, bytes32 commitment)
    {
        uint64 size;
        uint128 unitPrice;
        bytes32 reservation;
        // keccak256(abi.encode(tradeId, i)) hashed in the scratch space: abi.encode would allocate memory for it, and
        // every trade pays this per seller (the key is passed whether the offer keeps a reservation or not).
        assembly ("memory-safe") {
            mstore(0x00, tradeId)
            mstore(0x20, i)
            reservation := keccak256(0x00, 0x40)
        }
        // A trade without epsilon calls the function without it: one word less to encode and decode per seller.
        if (terms.epsilon == 0) {
            bool reserved;
            (seller, size, unitPrice, commitment, reserved) = cisc.offerForTrade(
                offerId, terms.tagHash, terms.codeHash, terms.outputCap, terms.outputPrice, msg.sender, reservation
            );
            if (reserved) _trades[tradeId].reserved = true; // the offer counted the trade against its maxTrades
        } else {
            (seller, size, unitPrice, commitment) = _takePrivateOffer(reservation, terms, offerId);
        }
        fee = uint256(unitPrice) * size;
        if (fee > terms.sellerCap) fee = terms.sellerCap;
    }

    /// @dev `cisc.offerForPrivateTrade`, which reserves the trade's epsilon under `reservation` (one word: a ninth
    /// argument does not fit the stack).
    function _takePrivateOffer(bytes32 reservation, Terms calldata terms, uint256 offerId)
        private
        returns (address, uint64, uint128, bytes32)
    {
        return cisc.offerForPrivateTrade(
            offerId, terms.tagHash, terms.codeHash, terms.outputCap, terms.outputPrice, msg.sender, terms.epsilon,
            reservation
        );
    }

    /// @dev Checks each node's quote and returns the nodes for the Facts (nothing is stored per node).
    function _addNodes(bytes32 tradeId, bytes32 codeHash, NodeInput[] calldata nodes)
        private
        returns (NodeRef[] memory refs)
    {
        refs = new NodeRef[](nodes.length);
        address root = attestationRoot;
        for (uint256 i; i < nodes.length; ++i) {
            NodeInput calldata n = nodes[i];
            address enclave = n.quote.enclave;
            if (n.payee == address(0) || enclave == address(0)) revert ZeroAddress();
            for (uint256 j; j < i; ++j) if (nodes[j].quote.enclave == enclave) revert DuplicateEnclave(enclave);
            _checkQuote(i, tradeId, codeHash, n.quote, n.payee, root);
            refs[i] = NodeRef(n.payee, enclave);
            emit TradeNode(tradeId, n.payee, enclave, uint8(i), n.quote.measurement, n.quote.taskId);
        }
    }

    /// @dev The quote checks of docs/protocol.md, in the order the custom errors report them. The report data names the
    /// node's account (its payee): a quote of another node's enclave, handed over by a peer as its own, does not verify.
    function _checkQuote(uint256 i, bytes32 tradeId, bytes32 codeHash, Quote calldata q, address payee, address root) private view {
        if (q.taskId != keccak256(abi.encode(tradeId, codeHash, q.enclave))) revert QuoteCodeHashMismatch(i);
        if (!acceptedMeasurement[q.measurement]) revert MeasurementNotAccepted(i, q.measurement);
        bytes32 reportData = keccak256(abi.encode(q.enclave, q.taskId, tradeId, codeHash, q.nonce, payee));
        bytes32 digest = keccak256(abi.encode(QUOTE_TAG, block.chainid, address(this), q.measurement, reportData));
        if (_recover(digest, q.signature) != root) revert QuoteNotFromRoot(i);
    }

    // ---- step 9: results, consensus, payment ----

    /// @notice Node `node` commits to its signed result: commitment = keccak256(abi.encode(resultDigest, node, nonce))
    /// with a fresh secret nonce. Only the node's payee may commit for it, once, while commitments are open: until
    /// every node has committed or COMMIT_WINDOW has passed since the first commitment. No result is public before.
    function commitResult(bytes32 tradeId, uint8 node, bytes32 commitment, Facts calldata facts) external {
        Trade storage t = _openTrade(tradeId);
        _checkFacts(tradeId, t, facts);
        if (block.timestamp > t.deadline) revert ResultAfterDeadline(t.deadline);
        if (node >= t.nNodes) revert UnknownNode(node);
        if (msg.sender != facts.nodes[node].payee) revert NotNodePayee(node);
        if (_revealOpen(t)) revert CommitPhaseClosed();
        uint16 bit = uint16(1) << node;
        if (t.committedMask & bit != 0) revert AlreadyCommitted(node);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        // commitment = keccak256(abi.encode(resultDigest, uint8 node, bytes32 nonce)), docs/protocol.md
        _commitments[tradeId][node] = commitment;
        if (t.nCommits == 0) t.commitStart = uint40(block.timestamp);
        t.nCommits += 1;
        t.committedMask |= bit;
        emit ResultCommitted(tradeId, node, commitment);
    }

    /// @notice Reveals node `node`'s signed result with the nonce of its commitment. Anyone may relay it: the signature
    /// must recover to the enclave attested for that node, the result must be for this trade's task and inputs, and it
    /// must open the node's commitment. The reveal settles the trade when the outcome was already certain before it (a
    /// group held a strict majority: this result is counted, then the trade settles) or when it is the last one due.
    function submitResult(
        ResultInfo calldata info, uint8 node, bytes calldata signature, bytes32 nonce, Facts calldata facts
    ) external {
        Trade storage t = _openTrade(info.tradeId);
        _checkFacts(info.tradeId, t, facts);
        if (!_revealOpen(t)) revert RevealTooEarly(t.nCommits == 0 ? 0 : uint256(t.commitStart) + COMMIT_WINDOW);
        uint16 bit = _checkResult(t, info, node, signature, nonce, facts);
        GroupSlot[MAX_NODES] storage groups = _groups[info.tradeId];
        // Whether a group already held a strict majority: then this is "the next submission" that settles.
        // Only possible once more than half the results are in, which spares the group read before that.
        bool certain = uint256(t.nResults) * 2 > t.nNodes && uint256(groups[t.leader].count) * 2 > t.nNodes;
        _record(t, groups, info, node, bit);
        if (certain || t.nResults == t.nCommits) _close(info.tradeId, t, groups[t.leader], facts);
    }

    /// @dev Reveals are accepted, and commitments refused, once every node committed or COMMIT_WINDOW has passed.
    function _revealOpen(Trade storage t) private view returns (bool) {
        uint256 n = t.nCommits;
        return n == t.nNodes || (n != 0 && block.timestamp >= uint256(t.commitStart) + COMMIT_WINDOW);
    }

    function _record(Trade storage t, GroupSlot[MAX_NODES] storage groups, ResultInfo calldata info, uint8 node, uint16 bit)
        private
    {
        t.submittedMask |= bit;
        t.nResults += 1;
        bytes32 key = keccak256(abi.encode(info.resultHash, info.resultSize, info.status));
        _joinGroup(t, groups, info, bit);
        emit ResultSubmitted(info.tradeId, node, key, info.resultHash, info.resultSize, info.status);
    }

    /// @dev The checks of a revealed result, in the order the custom errors report them; returns the node's bit.
    function _checkResult(
        Trade storage t, ResultInfo calldata info, uint8 node, bytes calldata signature, bytes32 nonce, Facts calldata facts
    )
        private
        view
        returns (uint16 bit)
    {
        if (block.timestamp > t.deadline) revert ResultAfterDeadline(t.deadline);
        if (node >= t.nNodes) revert UnknownNode(node);
        bit = uint16(1) << node;
        if (t.submittedMask & bit != 0) revert AlreadySubmitted(node);
        if (t.committedMask & bit == 0) revert NotCommitted(node);
        address enclave = facts.nodes[node].enclave;
        if (info.taskId != keccak256(abi.encode(info.tradeId, facts.codeHash, enclave))) revert WrongTask(node);
        // A static struct ABI-encodes as its fields in order: this is the resultDigest of docs/protocol.md.
        bytes32 digest = keccak256(abi.encode(RESULT_TAG, block.chainid, address(this), info));
        if (keccak256(abi.encode(digest, node, nonce)) != _commitments[info.tradeId][node]) revert CommitmentMismatch(node);
        if (_recover(digest, signature) != enclave) revert NotAttestedEnclave(node);
        if (info.inputHash != facts.inputHash) revert InputHashMismatch(facts.inputHash, info.inputHash);
        if (info.status > MAX_STATUS || (info.status != 0 && info.resultSize != 0)) revert InvalidResultInfo();
        if (info.resultSize > t.outputCap) revert PayoutAboveCap(info.resultSize, t.outputCap);
    }

    function _joinGroup(Trade storage t, GroupSlot[MAX_NODES] storage groups, ResultInfo calldata info, uint16 bit)
        private
    {
        uint256 ng = t.nGroups;
        uint256 g;
        while (g < ng && !_sameResult(groups[g], info)) ++g;
        GroupSlot storage grp = groups[g];
        if (g == ng) {
            grp.resultHash = info.resultHash;
            grp.resultSize = info.resultSize;
            grp.status = info.status;
            t.nGroups = uint8(ng + 1);
        }
        uint8 count = grp.count + 1;
        grp.count = count;
        grp.members |= bit;
        if (g != t.leader && count > groups[t.leader].count) t.leader = uint8(g);
    }

    function _sameResult(GroupSlot storage grp, ResultInfo calldata info) private view returns (bool) {
        return grp.resultHash == info.resultHash && grp.resultSize == info.resultSize && grp.status == info.status;
    }

    function _keyOf(GroupSlot storage grp) private view returns (bytes32) {
        return keccak256(abi.encode(grp.resultHash, grp.resultSize, grp.status));
    }

    /// @notice Settles a trade as soon as its outcome cannot change, or after its deadline. Anyone may call it.
    /// The outcome is certain when a group holds a strict majority of the trade's nodes (it is final: the
    /// nodes that have not reported are not paid) or when no group can reach one any more, even with every
    /// missing result (a full refund); once reveals are open, only the committed nodes can still report.
    /// After the deadline: the majority if there is one, else a full refund.
    function finalize(bytes32 tradeId, Facts calldata facts) external {
        Trade storage t = _openTrade(tradeId);
        _checkFacts(tradeId, t, facts);
        GroupSlot storage win = _groups[tradeId][t.leader];
        uint256 lead = t.nGroups == 0 ? 0 : win.count;
        uint256 missing = (_revealOpen(t) ? t.nCommits : t.nNodes) - t.nResults;
        bool certain = lead * 2 > t.nNodes || (lead + missing) * 2 <= t.nNodes;
        if (!certain && block.timestamp <= t.deadline) revert FinalizeTooEarly(t.deadline);
        _close(tradeId, t, win, facts);
    }

    /// @dev Settles on `win` when it holds a strict majority of the trade's nodes, else refunds the buyer.
    function _close(bytes32 tradeId, Trade storage t, GroupSlot storage win, Facts calldata facts) private {
        if (t.nGroups != 0 && uint256(win.count) * 2 > t.nNodes) _settle(tradeId, t, win, facts);
        else _refund(tradeId, t, facts);
    }

    function _settle(bytes32 tradeId, Trade storage t, GroupSlot storage win, Facts calldata facts) private {
        t.state = State.Settled;
        uint256 paid = _paySellers(tradeId, win, facts) + _payNodes(tradeId, t, win, facts);
        uint256 refund = facts.deposit - paid; // cannot underflow: every payout is within its cap
        _credit(facts.buyer, tradeId, refund);
        emit TradeSettled(tradeId, _keyOf(win), win.resultHash, win.resultSize, win.status, win.count, refund);
    }

    /// @dev Each seller: its data fee plus the whole output fee, outputPrice * resultSize. The output fee is
    /// per seller, never a share: a buyer adding offers of its own cannot dilute what a real seller earns.
    /// On "input invalid" the data fees are held instead: a seller is paid only with a receipt from a node of
    /// the final group, which a seller whose signed data broke cannot have (`claimDelivery`).
    function _paySellers(bytes32 tradeId, GroupSlot storage win, Facts calldata facts) private returns (uint256 paid) {
        if (win.status == STATUS_INPUT_INVALID) return _holdFees(tradeId, facts);
        uint256 outputFee = win.status == 0 ? uint256(facts.outputPrice) * win.resultSize : 0;
        Party[] calldata sellers = facts.sellers;
        for (uint256 i; i < sellers.length; ++i) {
            uint256 amount = sellers[i].fee + outputFee;
            paid += amount;
            _credit(sellers[i].account, tradeId, amount);
        }
    }

    /// @dev Each node of the final group: min(nodePrice * gasCap, nodeCap), whatever gas the run used (that would
    /// be a public, data-dependent channel); the others nothing.
    function _payNodes(bytes32 tradeId, Trade storage t, GroupSlot storage win, Facts calldata facts)
        private
        returns (uint256 paid)
    {
        uint256 nodeFee = facts.nodeFee;
        uint256 members = win.members;
        for (uint256 i; i < t.nNodes; ++i) {
            if (members & (1 << i) == 0) continue;
            paid += nodeFee;
            _credit(facts.nodes[i].payee, tradeId, nodeFee);
        }
    }

    /// @dev A refund returns everything except the sellers' data fees, which are held for CLAIM_WINDOW: a seller
    /// whose data an attested enclave verified holds a receipt for it and is paid whatever became of the trade.
    function _refund(bytes32 tradeId, Trade storage t, Facts calldata facts) private {
        t.state = State.Refunded;
        uint256 refund = facts.deposit - _holdFees(tradeId, facts);
        _credit(facts.buyer, tradeId, refund);
        emit TradeRefunded(tradeId, refund, t.nResults);
    }

    /// @dev Holds every seller's data fee for claims until now + CLAIM_WINDOW; returns the sum held.
    function _holdFees(bytes32 tradeId, Facts calldata facts) private returns (uint256 held) {
        uint256 ns = facts.sellers.length;
        for (uint256 i; i < ns; ++i) held += facts.sellers[i].fee;
        uint40 until = uint40(block.timestamp + CLAIM_WINDOW);
        claims[tradeId] = Claims(until, uint8((1 << ns) - 1), 0, 0, 0);
        emit FeesHeld(tradeId, held, until);
    }

    // ---- delivery claims (issue 10, properties 1 and 6) ----

    /// @notice Pays seller `index` its held data fee on a delivery receipt signed by node `node`'s attested enclave
    /// (the task key DTMC holds for that node). Anyone may relay it; the fee goes to the seller's account.
    /// `commitments` are the trade's sellers' commitments in order (they must hash to its inputHash): the receipt
    /// is over this seller's. After an "input invalid" settlement the receipt must come from the final group.
    function claimDelivery(
        bytes32 tradeId, uint8 index, uint8 node, bytes32[] calldata commitments, bytes calldata signature,
        Facts calldata facts
    ) external {
        _checkClaim(tradeId, index, node, commitments, facts);
        Party calldata seller = facts.sellers[index];
        _checkReceipt(tradeId, facts, index, node, commitments[index], seller.account, signature);
        claims[tradeId].held &= ~(uint8(1) << index);
        emit DeliveryClaimed(tradeId, seller.account, index, node, seller.fee);
        _credit(seller.account, tradeId, seller.fee);
    }

    /// @dev The checks of a claim before its receipt, in the order the custom errors report them.
    function _checkClaim(bytes32 tradeId, uint8 index, uint8 node, bytes32[] calldata commitments, Facts calldata facts)
        private
        view
    {
        Trade storage t = _trade(tradeId);
        _checkFacts(tradeId, t, facts);
        Claims storage c = claims[tradeId];
        if (index >= t.nSellers || c.held & (uint8(1) << index) == 0) revert NothingHeld(tradeId, index);
        if (block.timestamp > c.until) revert ClaimWindowClosed(c.until);
        if (node >= t.nNodes) revert UnknownNode(node);
        if (t.state == State.Settled && _groups[tradeId][t.leader].members & (uint16(1) << node) == 0) {
            revert ReceiptNotFromFinalGroup(node);
        }
        if (keccak256(abi.encode(commitments)) != facts.inputHash) revert CommitmentsMismatch();
    }

    /// @dev The receipt must recover to node `node`'s attested enclave: receiptDigest of docs/protocol.md.
    function _checkReceipt(
        bytes32 tradeId, Facts calldata facts, uint8 index, uint8 node, bytes32 commitment, address seller, bytes calldata signature
    ) private view {
        address enclave = facts.nodes[node].enclave;
        if (_recover(_receiptDigest(tradeId, facts, index, node, commitment, seller), signature) != enclave) {
            revert NotAttestedEnclave(node);
        }
    }

    /// @dev receiptDigest of docs/protocol.md: node `node`'s enclave's receipt for seller `index`'s delivery.
    function _receiptDigest(bytes32 tradeId, Facts calldata facts, uint8 index, uint8 node, bytes32 commitment, address seller)
        private
        view
        returns (bytes32)
    {
        bytes32 taskId = keccak256(abi.encode(tradeId, facts.codeHash, facts.nodes[node].enclave));
        return keccak256(abi.encode(RECEIPT_TAG, block.chainid, address(this), tradeId, taskId, index, commitment, seller));
    }

    /// @notice Pays node `node` of an open trade a seller declined (`declineTrade` before any commitment) its held
    /// fee, on the decliner's acknowledgement of that node's delivery receipt: the decliner's signature over
    /// receiptAckDigest(receiptDigest(tradeId, the node's taskId, decliner, its commitment, its account)), which the
    /// seller sent the node on the data stream before the enclave could run (docs/protocol.md "Delivery receipts").
    /// So a buyer that is also a seller of its own trade cannot let the nodes run and then decline for a full refund:
    /// its acknowledgement pays them. Within DECLINE_NODE_CLAIM_WINDOW; anyone may relay it, the fee goes to the
    /// node's payee. `commitments` are the trade's sellers' commitments in order (they must hash to its inputHash).
    function claimRun(bytes32 tradeId, uint8 node, bytes32[] calldata commitments, bytes calldata ack, Facts calldata facts)
        external
    {
        Trade storage t = _trade(tradeId);
        _checkFacts(tradeId, t, facts);
        if (node >= t.nNodes) revert UnknownNode(node);
        Claims storage c = claims[tradeId];
        uint16 bit = uint16(1) << node;
        if (c.nodesHeld & bit == 0) revert NodeFeeNotHeld(tradeId, node);
        if (block.timestamp > c.nodeUntil) revert ClaimWindowClosed(c.nodeUntil);
        if (keccak256(abi.encode(commitments)) != facts.inputHash) revert CommitmentsMismatch();
        uint8 index = c.decliner;
        address seller = facts.sellers[index].account;
        bytes32 receipt = _receiptDigest(tradeId, facts, index, node, commitments[index], seller);
        if (_recover(keccak256(abi.encode(RECEIPT_ACK_TAG, receipt)), ack) != seller) revert NotDeclinerAck(node);
        c.nodesHeld &= ~bit;
        address payee = facts.nodes[node].payee;
        emit RunClaimed(tradeId, node, payee, facts.nodeFee);
        _credit(payee, tradeId, facts.nodeFee);
    }

    /// @notice After the claim window, the data fees nobody claimed go to the buyer; after DECLINE_NODE_CLAIM_WINDOW
    /// the node fees a decline held that no node claimed (`claimRun`) too (each part once its own window is over, so
    /// the node fees come back days before the data fees). Anyone may call it.
    /// The sellers that claimed nothing also get back what the trade reserved on their offers (CISC
    /// `releaseReservations`: a private offer's epsilon, the trade's place in an offer's maxTrades): without a receipt
    /// their data never entered an enclave (none runs before every seller acknowledged its receipt), so no answer
    /// spent it. A seller that claimed keeps it spent, and was paid its fee for it.
    function releaseUnclaimed(bytes32 tradeId, Facts calldata facts) external {
        Trade storage t = _trade(tradeId);
        _checkFacts(tradeId, t, facts);
        Claims storage c = claims[tradeId];
        uint8 held = c.held;
        uint16 nodesHeld = c.nodesHeld;
        if (held == 0 && nodesHeld == 0) revert NothingHeld(tradeId, MAX_SELLERS);
        uint256 amount;
        bool nodesDue = nodesHeld != 0 && block.timestamp > c.nodeUntil;
        bool sellersDue = held != 0 && block.timestamp > c.until;
        // Nothing due yet: the earliest window still open (a decline's node window ends before its claim window).
        if (!nodesDue && !sellersDue) revert ClaimWindowOpen(nodesHeld != 0 ? c.nodeUntil : c.until);
        if (nodesDue) {
            for (uint256 i; i < t.nNodes; ++i) if (nodesHeld & (uint16(1) << i) != 0) amount += facts.nodeFee;
            c.nodesHeld = 0;
        }
        if (sellersDue) {
            for (uint256 i; i < t.nSellers; ++i) if (held & (uint8(1) << i) != 0) amount += facts.sellers[i].fee;
            c.held = 0;
        }
        emit UnclaimedReleased(tradeId, amount);
        if (sellersDue && t.reserved) cisc.releaseReservations(tradeId, held);
        _credit(facts.buyer, tradeId, amount);
    }

    /// @notice Seller `index` declines the trade before its data went in, and frees at once what the trade reserved
    /// on its offer in CISC (a private offer's epsilon, a place in its maxTrades) instead of at `releaseUnclaimed`,
    /// after the deadline and the claim window: a stranger's trade the seller refuses (a fee below its price, terms
    /// outside its policy) holds nothing. Only the seller's account (`NotSeller`).
    /// - Open, and no node committed (`DeclineTooLate`: an enclave ran, so it had every seller's data): the trade is
    ///   refunded now. The other sellers' data fees are held for CLAIM_WINDOW as on any refund (one may have
    ///   delivered and hold a receipt); the decliner's is not held (it gives it up); every node's fee is held for
    ///   DECLINE_NODE_CLAIM_WINDOW, paid to a node that shows the decliner's acknowledgement of its receipt
    ///   (`claimRun`: the enclave may have run, DTMC cannot see it before a commitment); the rest goes to the buyer.
    /// - Refunded or settled on "input invalid" with the seller's fee still held (`NothingHeld`; a seller that
    ///   claimed it with a receipt cannot decline) and within the claim window (`ClaimWindowClosed`; after it
    ///   `releaseUnclaimed` does this for everyone): the fee goes to the buyer.
    /// Safe for the budget: a seller's data enters an enclave only with the seller's acknowledged receipt, and a
    /// seller that declines gives up its fee for it, so it cannot both sell an answer on its data and get the
    /// reservation back. Nothing on the honest path calls it.
    function declineTrade(bytes32 tradeId, uint8 index, Facts calldata facts) external {
        Trade storage t = _trade(tradeId);
        _checkFacts(tradeId, t, facts);
        if (index >= t.nSellers) revert UnknownSeller(index);
        Party calldata seller = facts.sellers[index];
        if (msg.sender != seller.account) revert NotSeller(tradeId, index);
        uint8 bit = uint8(1) << index;
        uint256 refund;
        if (t.state == State.Open) {
            if (t.nCommits != 0) revert DeclineTooLate(tradeId);
            t.state = State.Refunded;
            refund = facts.deposit - _holdOthers(tradeId, facts, bit) - _holdNodes(tradeId, facts, index);
            emit TradeRefunded(tradeId, refund, 0);
        } else {
            Claims storage c = claims[tradeId];
            if (c.held & bit == 0) revert NothingHeld(tradeId, index);
            if (block.timestamp > c.until) revert ClaimWindowClosed(c.until);
            c.held &= ~bit;
            refund = seller.fee;
        }
        emit TradeDeclined(tradeId, seller.account, index, seller.fee);
        if (t.reserved) cisc.releaseReservations(tradeId, bit);
        _credit(facts.buyer, tradeId, refund);
    }

    /// @dev `_holdFees` for every seller but the one of `except` (a decline): returns the sum held. Holds nothing
    /// (no claims entry) when no other seller is left.
    function _holdOthers(bytes32 tradeId, Facts calldata facts, uint8 except) private returns (uint256 held) {
        uint256 ns = facts.sellers.length;
        uint8 mask = uint8((1 << ns) - 1) & ~except;
        if (mask == 0) return 0;
        for (uint256 i; i < ns; ++i) if (mask & (uint8(1) << i) != 0) held += facts.sellers[i].fee;
        uint40 until = uint40(block.timestamp + CLAIM_WINDOW);
        Claims storage c = claims[tradeId];
        c.until = until;
        c.held = mask;
        emit FeesHeld(tradeId, held, until);
    }

    /// @dev On an open trade's decline by seller `decliner`: holds every node's fee for run claims until now +
    /// DECLINE_NODE_CLAIM_WINDOW; returns the sum held (nothing when the node fee is zero).
    function _holdNodes(bytes32 tradeId, Facts calldata facts, uint8 decliner) private returns (uint256 held) {
        uint256 nn = facts.nodes.length;
        held = facts.nodeFee * nn;
        if (held == 0) return 0;
        uint40 until = uint40(block.timestamp + DECLINE_NODE_CLAIM_WINDOW);
        Claims storage c = claims[tradeId];
        c.nodeUntil = until;
        c.nodesHeld = uint16((1 << nn) - 1);
        c.decliner = decliner;
        emit NodeFeesHeld(tradeId, held, until);
    }

    /// @dev Pays `amount` at once (push): a send with only the 2,300-gas stipend, too little for the payee to write
    /// storage, so it cannot re-enter DTMC with effect, and a payee that refuses (a reverting or costly receive
    /// hook) only has the amount credited to `balanceOf` instead, for `withdraw`: nobody can block a settlement.
    /// Pushing spares the honest trade a fresh balance slot and a withdrawal transaction per payee (about 46,000
    /// gas each; BENCHMARKS.md "Issue 13"). `Credited` reports the payment either way, and whether it was sent.
    /// What a payee's behaviour can change is bounded: a refusal costs at most the whole stipend and a fresh balance
    /// slot (22,100) more than an acceptance. A payee may accept in the caller's gas estimate and refuse when mined,
    /// so a caller reserves the most a payout can cost per payee over its estimate (PAYOUT_GAS in contracts/client.ts).
    /// The event comes after the send: the stipend leaves the payee no gas to act on DTMC in between.
    function _credit(address account, bytes32 tradeId, uint256 amount) private {
        if (amount == 0) return;
        bool sent = payable(account).send(amount);
        if (!sent) balanceOf[account] += amount;
        emit Credited(account, tradeId, amount, sent);
    }

    /// @notice Sends the caller everything credited to it. The balance is zeroed before the transfer,
    /// so a payee that re-enters finds nothing.
    function withdraw() external {
        uint256 amount = balanceOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balanceOf[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert WithdrawFailed();
    }

    // ---- step 11: feedback ----

    /// @notice The buyer rates seller `index` of a settled trade, once; the rating and the final result info go to CISC.
    function rate(bytes32 tradeId, uint8 index, uint8 score, string calldata comment, Facts calldata facts) external {
        Trade storage t = _trade(tradeId);
        _checkFacts(tradeId, t, facts);
        if (msg.sender != facts.buyer) revert NotBuyer(tradeId);
        if (t.state != State.Settled) revert TradeNotSettled(tradeId);
        if (index >= t.nSellers) revert UnknownSeller(index);
        uint8 bit = uint8(1) << index;
        if (t.ratedMask & bit != 0) revert AlreadyRated(tradeId, index);
        if (score == 0 || score > 5) revert InvalidScore(score);
        t.ratedMask |= bit;
        address seller = facts.sellers[index].account;
        GroupSlot storage win = _groups[tradeId][t.leader];
        cisc.recordFeedback(seller, tradeId, score, win.resultHash, win.resultSize, win.status, comment);
    }

    // ---- views ----

    /// @notice Everything about one trade: terms, sellers with their fees, nodes with their groups, result groups.
    /// When `state` is Settled, `groups[leader]` is the final result.
    function trade(bytes32 tradeId) external view returns (TradeView memory v) {
        Trade storage t = _trade(tradeId);
        v.state = t.state;
        v.deadline = t.deadline;
        v.nResults = t.nResults;
        v.ratedMask = t.ratedMask;
        v.leader = t.leader;
        v.outputCap = t.outputCap;
        v.nCommits = t.nCommits;
        v.commitStart = t.commitStart;
        v.groups = new Group[](t.nGroups);
        for (uint256 g; g < v.groups.length; ++g) {
            GroupSlot storage grp = _groups[tradeId][g];
            v.groups[g] = Group(_keyOf(grp), grp.resultHash, grp.resultSize, grp.status, grp.count, grp.members);
        }
        v.nodes = new NodeView[](t.nNodes);
        for (uint256 i; i < v.nodes.length; ++i) {
            NodeView memory n = v.nodes[i];
            n.committed = t.committedMask & (1 << i) != 0;
            n.submitted = t.submittedMask & (1 << i) != 0;
            for (uint256 g; g < v.groups.length; ++g) if (v.groups[g].members & (1 << i) != 0) n.group = uint8(g);
        }
    }

    function _trade(bytes32 tradeId) private view returns (Trade storage t) {
        t = _trades[tradeId];
        if (t.state == State.None) revert UnknownTrade(tradeId);
    }

    function _openTrade(bytes32 tradeId) private view returns (Trade storage t) {
        t = _trade(tradeId);
        if (t.state != State.Open) revert AlreadyFinalized(tradeId);
    }

    /// @dev ecrecover over a raw digest with a 65-byte r ‖ s ‖ v signature; refuses high s and bad v.
    function _recover(bytes32 digest, bytes calldata sig) private pure returns (address signer) {
        if (sig.length != 65) revert InvalidSignature();
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) revert InvalidSignature();
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
    }
}
