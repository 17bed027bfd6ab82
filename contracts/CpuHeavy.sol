// SPDX-License-Identifier: Apache-2.0
// bctest workload "cpuheavy": a hashing loop (keccak256 chained `rounds` times); the last
// digest is stored so the harness can check the chain really computed it.
// Storage layout: slot 0 results (uint256 => bytes32), slot 1 runs
pragma solidity 0.8.28;

contract CpuHeavy {
    mapping(uint256 => bytes32) public results;
    uint256 public runs;

    function work(uint256 id, uint256 rounds) external {
        bytes32 h = bytes32(id);
        for (uint256 i = 0; i < rounds; i++) {
            h = keccak256(abi.encodePacked(h));
        }
        results[id] = h;
        runs += 1;
    }
}
