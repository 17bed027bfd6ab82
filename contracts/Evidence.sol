// SPDX-License-Identifier: Apache-2.0
// bctest workload "evidence" (存证): a document's hash stored once with its metadata hash,
// its owner and the block; verify() answers it later.
// Storage layout: slot 0 records (bytes32 => Record{meta: +0, owner|number: +1}), slot 1 count
pragma solidity 0.8.28;

contract Evidence {
    struct Record {
        bytes32 meta;
        address owner;
        uint64 number;
    }

    mapping(bytes32 => Record) public records;
    uint256 public count;

    event Stored(bytes32 indexed doc, address indexed owner, bytes32 meta);

    function store(bytes32 doc, bytes32 meta) external {
        require(records[doc].owner == address(0), "already stored");
        records[doc] = Record(meta, msg.sender, uint64(block.number));
        count += 1;
        emit Stored(doc, msg.sender, meta);
    }

    function verify(bytes32 doc) external view returns (address owner, bytes32 meta, uint64 number) {
        Record storage r = records[doc];
        return (r.owner, r.meta, r.number);
    }
}
