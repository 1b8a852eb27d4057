// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title BDBC, the buyer demand broadcast contract (PROTOCOL.md step 2)
/// @notice The demand itself travels on gossipsub (`/sdte/bdbc/1`), signed by the buyer; its hash is
/// posted here so every demand is on the record, with the account that posted it. Nothing is stored:
/// the event is the record, and a demand posted twice is simply on the record twice.
contract BDBC {
    event DemandPosted(address indexed buyer, bytes32 indexed demandHash);

    error ZeroDemandHash();

    function postDemand(bytes32 demandHash) external {
        if (demandHash == bytes32(0)) revert ZeroDemandHash();
        emit DemandPosted(msg.sender, demandHash);
    }
}
