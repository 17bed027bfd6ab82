"""Storage proven against a state root (harness/workloads/evm_proof.py): values recomputed
from Merkle-Patricia proof nodes, absent keys, altered nodes, values a node states but its
proof contradicts, and headers that do not hash to the block the run saw."""

from __future__ import annotations

import pytest
import rlp
from eth_hash.auto import keccak

import harness.audit.evm as audit_evm
from harness.workloads.evm_proof import ProofError, ProvenHeader, storage_values, trie_get, verify_header

ADDRESS = "0x" + "42" * 20


def build_trie(monkeypatch, pairs: list[tuple[bytes, bytes]]) -> tuple[bytes, list[bytes]]:
    """A trie's root and every node of it (a proof may carry more nodes than its path)."""
    nodes: list[bytes] = []
    real_ref = audit_evm._ref

    def recording(node):
        ref = real_ref(node)
        if isinstance(ref, bytes):
            nodes.append(rlp.encode(node))
        return ref
    monkeypatch.setattr(audit_evm, "_ref", recording)
    root = audit_evm.trie_root(pairs)
    monkeypatch.setattr(audit_evm, "_ref", real_ref)
    items = sorted(([n for b in k for n in (b >> 4, b & 15)], v) for k, v in pairs)
    nodes.append(rlp.encode(audit_evm._node(items, 0)))
    return root, nodes


def storage(values: dict[int, int]) -> list[tuple[bytes, bytes]]:
    return [(keccak(slot.to_bytes(32, "big")), rlp.encode(value)) for slot, value in values.items()]


def test_trie_get_reads_present_and_absent_keys(monkeypatch):
    pairs = storage({i: 1000 + i for i in range(40)})
    root, nodes = build_trie(monkeypatch, pairs)
    for key, value in pairs:
        assert trie_get(root, key, nodes) == value
    assert trie_get(root, keccak((999).to_bytes(32, "big")), nodes) is None


def test_the_empty_trie_holds_nothing():
    empty = rlp.encode(b"")
    assert trie_get(keccak(empty), keccak(b"any"), [empty]) is None
    assert trie_get(keccak(empty), keccak(b"any"), []) is None


def test_an_altered_or_missing_node_is_a_proof_error(monkeypatch):
    pairs = storage({i: 7 for i in range(40)})
    root, nodes = build_trie(monkeypatch, pairs)
    with pytest.raises(ProofError, match="lacks node"):
        trie_get(root, pairs[0][0], nodes[:-1])           # without the root node
    tampered = [n.replace(rlp.encode(7), rlp.encode(8)) for n in nodes]
    with pytest.raises(ProofError, match="lacks node"):
        trie_get(root, pairs[0][0], tampered)


def _account_state(monkeypatch, slots: dict[int, int]):
    storage_root, storage_nodes = build_trie(monkeypatch, storage(slots))
    account = rlp.encode([1, 0, storage_root, keccak(b"code")])
    other = rlp.encode([0, 5, b"", b""])
    state_root, account_nodes = build_trie(monkeypatch, [(keccak(bytes.fromhex(ADDRESS[2:])), account),
                                                         (keccak(b"\x01" * 20), other)])
    header = ProvenHeader(number=8, hash="0x" + "00" * 32, state_root=state_root)
    return header, {"accountProof": ["0x" + n.hex() for n in account_nodes],
                    "storageHash": "0x" + storage_root.hex(),
                    "proofs": ["0x" + n.hex() for n in storage_nodes]}


def _answer(base, asked: list[int], stated: dict[int, int]):
    return {"accountProof": base["accountProof"],
            "storageProof": [{"key": hex(s), "value": hex(stated.get(s, 0)), "proof": base["proofs"]}
                             for s in asked]}


def test_storage_values_are_the_proven_ones_and_forgeries_are_named(monkeypatch):
    truth = {1: 10, 2: 20, 3: 30}
    header, base = _account_state(monkeypatch, truth)
    honest = _answer(base, [1, 2, 3, 9], truth)
    assert storage_values(header, ADDRESS, [1, 2, 3, 9], honest) == ([10, 20, 30, 0], [])
    lie = _answer(base, [1, 2, 3, 9], {1: 10, 2: 99, 3: 30, 9: 5})     # what the harness hoped for
    assert storage_values(header, ADDRESS, [1, 2, 3, 9], lie) == ([10, 20, 30, 0], [2, 9])


def test_proofs_against_another_root_or_for_other_slots_do_not_verify(monkeypatch):
    header, base = _account_state(monkeypatch, {1: 10})
    other = ProvenHeader(number=8, hash=header.hash, state_root=keccak(b"another state"))
    with pytest.raises(ProofError):
        storage_values(other, ADDRESS, [1], _answer(base, [1], {1: 10}))
    with pytest.raises(ProofError, match="asked"):
        storage_values(header, ADDRESS, [2], _answer(base, [1], {1: 10}))
    with pytest.raises(ProofError, match="no account"):
        storage_values(header, "0x" + "43" * 20, [1], _answer(base, [1], {1: 10}))
    with pytest.raises(ProofError, match="accountProof"):
        storage_values(header, ADDRESS, [1], {"storageProof": []})


BLOCK = {"parentHash": "0x" + "11" * 32, "sha3Uncles": "0x" + "22" * 32, "miner": "0x" + "33" * 20,
         "stateRoot": "0x" + "44" * 32, "transactionsRoot": "0x" + "55" * 32,
         "receiptsRoot": "0x" + "66" * 32, "logsBloom": "0x" + "00" * 256, "difficulty": "0x0",
         "number": "0x8", "gasLimit": "0x1c9c380", "gasUsed": "0x5208", "timestamp": "0x6553f100",
         "extraData": "0x", "mixHash": "0x" + "77" * 32, "nonce": "0x0000000000000000",
         "baseFeePerGas": "0x7"}


def test_a_header_must_hash_to_the_block_the_run_saw():
    recomputed = "0x" + audit_evm.header_hash(BLOCK).hex()
    proven = verify_header({**BLOCK, "hash": recomputed}, recomputed)
    assert proven.number == 8 and proven.state_root == b"\x44" * 32
    assert verify_header({**BLOCK, "hash": recomputed}, None).hash == recomputed
    with pytest.raises(ProofError, match="the run saw"):
        verify_header({**BLOCK, "hash": recomputed}, "0x" + "99" * 32)
    with pytest.raises(ProofError, match="the run saw"):      # a state root swapped in
        verify_header({**BLOCK, "stateRoot": "0x" + "45" * 32, "hash": recomputed}, recomputed)
    with pytest.raises(ProofError, match="unreadable"):
        verify_header({"number": "0x8"}, recomputed)


def _receipt(status: str, cumulative: int, typed: bool = False) -> dict:
    return {"status": status, "cumulativeGasUsed": hex(cumulative), "logsBloom": "0x" + "00" * 256,
            "type": "0x2" if typed else "0x0",
            "logs": [{"address": "0x" + "aa" * 20, "topics": ["0x" + "bb" * 32], "data": "0x01"}]}


def test_receipts_must_rebuild_the_headers_receipts_root():
    from harness.workloads.evm_proof import encode_receipt, verify_receipts
    receipts = [_receipt("0x1", 21000), _receipt("0x0", 60000, typed=True)]
    assert encode_receipt(receipts[1])[0] == 2 and encode_receipt(receipts[0])[0] >= 0xc0
    root = audit_evm.trie_root([(rlp.encode(i), encode_receipt(r)) for i, r in enumerate(receipts)])
    block = {"number": "0x8", "receiptsRoot": "0x" + root.hex()}
    verify_receipts(block, receipts)
    forged = [receipts[0], {**receipts[1], "status": "0x1"}]     # a revert told as a success
    with pytest.raises(ProofError, match="rebuild root"):
        verify_receipts(block, forged)
    with pytest.raises(ProofError, match="without"):
        verify_receipts(block, [{"status": "0x1"}])
