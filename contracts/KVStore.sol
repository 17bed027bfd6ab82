// SPDX-License-Identifier: Apache-2.0
// bctest workload "ycsb": a key-value store (BlockBench's KVStore / YCSB). Updates are
// transactions; reads are eth_call of get() in the query phase.
// Storage layout: slot 0 store (bytes32 => bytes32), slot 1 writes (successful count)
pragma solidity 0.8.28;

contract KVStore {
    mapping(bytes32 => bytes32) public store;
    uint256 public writes;

    function set(bytes32 key, bytes32 value) external {
        store[key] = value;
        writes += 1;
    }

    function setMany(bytes32[] calldata keys, bytes32[] calldata values) external {
        require(keys.length == values.length, "lengths");
        for (uint256 i = 0; i < keys.length; i++) {
            store[keys[i]] = values[i];
        }
        writes += keys.length;
    }

    function get(bytes32 key) external view returns (bytes32) {
        return store[key];
    }
}
