// SPDX-License-Identifier: Apache-2.0
// bctest workload "traceability" (溯源): a product's events, appended by its owner, each
// linked to the previous by a hash chain; history() returns the chain end to end.
// Storage layout: slot 0 owner (bytes32 => address), slot 1 head (bytes32 => bytes32),
//   slot 2 length (bytes32 => uint256), slot 3 events (bytes32 => uint256 => bytes32), slot 4 total
pragma solidity 0.8.28;

contract Traceability {
    mapping(bytes32 => address) public owner;
    mapping(bytes32 => bytes32) public head;
    mapping(bytes32 => uint256) public length;
    mapping(bytes32 => mapping(uint256 => bytes32)) public events;
    uint256 public total;

    function create(bytes32 product, bytes32 origin) external {
        require(owner[product] == address(0), "exists");
        owner[product] = msg.sender;
        _append(product, origin);
    }

    function record(bytes32 product, bytes32 data) external {
        require(owner[product] == msg.sender, "not the owner");
        _append(product, data);
    }

    function _append(bytes32 product, bytes32 data) private {
        events[product][length[product]] = data;
        length[product] += 1;
        head[product] = keccak256(abi.encodePacked(head[product], data));
        total += 1;
    }

    function history(bytes32 product) external view returns (bytes32[] memory out, bytes32 last) {
        out = new bytes32[](length[product]);
        for (uint256 i = 0; i < out.length; i++) {
            out[i] = events[product][i];
        }
        return (out, head[product]);
    }
}
