// SPDX-License-Identifier: Apache-2.0
// bctest workload "ioheavy": many storage writes per transaction (BlockBench's IOHeavy):
// slots start..start+count-1 each get keccak256(seed, slot).
// Storage layout: slot 0 data (uint256 => bytes32), slot 1 writes
pragma solidity 0.8.28;

contract IoHeavy {
    mapping(uint256 => bytes32) public data;
    uint256 public writes;

    function write(uint256 start, uint256 count, bytes32 seed) external {
        for (uint256 i = start; i < start + count; i++) {
            data[i] = keccak256(abi.encodePacked(seed, i));
        }
        writes += count;
    }
}
