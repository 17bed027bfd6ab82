"""Pre-signing throughput: signatures per second per core, and against references.

Issue 13: "pre-signing in parallel processes at ≥ 10,000 signatures/s per core (coincurve)".
Measured side by side in one run, each for about --seconds of work:

  evm 1 process     harness.adapters.evm._sign_range: what EvmAdapter.prepare runs per chunk
                    (EIP-155 transfer signed + hashed + its eth_sendRawTransaction body)
  evm N processes   EvmAdapter.prepare(count) itself: spawned signing pool, body spool file
  bitcoin 1 process harness.adapters.bitcoin.sign_load_batch: 1-in-1-out P2WPKH spends
  references        coincurve sign_recoverable alone (the primitive: the ceiling),
                    the previous encoder (`rlp` package, a PrivateKey built per signature),
                    eth-account's Account.sign_transaction (what a user would reach for)

"Per core" is signatures per CPU-second of the signing processes (user + system time), so it
does not depend on what else the machine runs; the wall-clock rate is printed beside it.

  python bench/signing.py
  python bench/signing.py --seconds 5 --count 400000
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import coincurve  # noqa: E402
import rlp  # noqa: E402
from eth_account import Account as EthAccount  # noqa: E402
from eth_hash.auto import keccak  # noqa: E402

from harness.adapters import bitcoin as bitcoin_adapter  # noqa: E402
from harness.adapters import bitcoin_tx as btx  # noqa: E402
from harness.adapters import evm as evm_adapter  # noqa: E402
from harness.adapters.evm_tx import derive_account  # noqa: E402
from harness.chainpack import load as load_pack  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = 1024


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rate(run: Callable[[int], None], batch: int, seconds: float, repeats: int = 3) -> tuple[float, float]:
    """(per CPU-second, per wall second), medians of `repeats` runs of ≥ seconds/repeats."""
    per_cpu, per_wall = [], []
    for _ in range(repeats):
        done, cpu0, wall0 = 0, cpu_self(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds / repeats:
            run(batch)
            done += batch
        per_cpu.append(done / max(1e-9, cpu_self() - cpu0))
        per_wall.append(done / (time.perf_counter() - wall0))
    return statistics.median(per_cpu), statistics.median(per_wall)


def old_sign_transfer(key: bytes, nonce: int, gas_price: int, gas: int, to: bytes, value: int,
                      chain_id: int) -> tuple[bytes, bytes]:
    """The encoder before issue 13 (harness/adapters/evm_tx.py at 0.3.0), for comparison."""
    unsigned = [nonce, gas_price, gas, to, value, b""]
    digest = keccak(rlp.encode(unsigned + [chain_id, 0, 0]))
    signature = coincurve.PrivateKey(key).sign_recoverable(digest, hasher=None)
    v = chain_id * 2 + 35 + signature[64]
    raw = rlp.encode(unsigned + [v, int.from_bytes(signature[:32], "big"),
                                 int.from_bytes(signature[32:64], "big")])
    return raw, keccak(raw)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per single-process figure")
    parser.add_argument("--count", type=int, default=200_000, help="transactions for N processes")
    args = parser.parse_args()

    pack = load_pack(ROOT / "chains" / "anvil")
    adapter = evm_adapter.EvmAdapter(pack, {}, 1, 7, ACCOUNTS)
    keys = [a.key for a in adapter.senders(ACCOUNTS)]
    recipients = [derive_account("recipient", 7, i).address for i in range(64)]
    evm_adapter._init_signer(0, keys, recipients, adapter.gas_price, adapter.chain_id)
    cursor = {"i": 0}

    def evm_batch(n: int) -> None:
        evm_adapter._sign_range((cursor["i"], cursor["i"] + n))
        cursor["i"] += n

    def primitive(n: int) -> None:
        for i in range(n):
            coincurve_keys[i % 64].sign_recoverable(keccak(i.to_bytes(8, "big")), hasher=None)

    def old(n: int) -> None:
        for i in range(n):
            old_sign_transfer(keys[i % ACCOUNTS], i // ACCOUNTS, adapter.gas_price, 21_000,
                              recipients[i % 64], 1, adapter.chain_id)

    def eth_account(n: int) -> None:
        for i in range(n):
            EthAccount.sign_transaction({"nonce": i // ACCOUNTS, "gasPrice": adapter.gas_price,
                                         "gas": 21_000, "to": recipients_checksum[i % 64],
                                         "value": 1, "data": b"", "chainId": adapter.chain_id},
                                        keys[i % ACCOUNTS])

    coincurve_keys = [coincurve.PrivateKey(k) for k in keys[:64]]
    from eth_utils import to_checksum_address
    recipients_checksum = [to_checksum_address(r) for r in recipients]

    btc_keys = [btx.derive_key("load", 7, i) for i in range(64)]
    btc_recipients = [btx.derive_key("recipient", 7, i).p2wpkh for i in range(16)]
    btc_rows = [(i, bitcoin_adapter.Utxo(txid=f"{i:064x}", vout=0, value=50_000, key=i % 64))
                for i in range(256)]

    def bitcoin(n: int) -> None:
        for start in range(0, n, 256):
            bitcoin_adapter.sign_load_batch((btc_rows[:min(256, n - start)],
                                             [k.secret for k in btc_keys], btc_recipients, 1000))

    print(f"signing on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"coincurve {coincurve.__version__ if hasattr(coincurve, '__version__') else '?'}; "
          f"medians of 3, ~{args.seconds:g} s each figure\n", flush=True)
    rows = []
    for name, run, batch in [("coincurve sign_recoverable alone (ceiling)", primitive, 512),
                             ("evm: harness signer, 1 process", evm_batch, 512),
                             ("evm: previous encoder (rlp, key per call)", old, 256),
                             ("evm: eth-account sign_transaction", eth_account, 64),
                             ("bitcoin P2WPKH spend, 1 process", bitcoin, 256)]:
        per_cpu, per_wall = rate(run, batch, args.seconds)
        rows.append((name, per_cpu, per_wall))
        print(f"  {name:<44} {per_cpu:>9,.0f} /CPU-s  {per_wall:>9,.0f} /s wall", flush=True)

    workers = os.cpu_count() or 1
    count = max(args.count, evm_adapter.PARALLEL_SIGNING_ABOVE + 1)
    cpu0, child0, wall0 = cpu_self(), cpu_children(), time.perf_counter()
    spooled = adapter.prepare(count)
    wall = time.perf_counter() - wall0
    cpu = (cpu_self() - cpu0) + (cpu_children() - child0)
    assert len(spooled) == count
    spooled.close()
    print(f"  {'evm: EvmAdapter.prepare, ' + str(workers) + ' processes':<44} "
          f"{count / cpu:>9,.0f} /CPU-s  {count / wall:>9,.0f} /s wall  "
          f"({count} txs in {wall:.1f} s, {cpu:.1f} CPU-s incl. the parent and pool start)")

    ours = rows[1][1]
    print()
    print(f"harness signer per core: {ours:,.0f}/s = {ours / rows[0][1]:.2f}x the bare signature, "
          f"{ours / rows[2][1]:.1f}x the previous encoder, {ours / rows[3][1]:.1f}x eth-account")
    print(f"prepare, {workers} processes: {count / cpu:,.0f} per CPU-second, "
          f"{count / wall / workers:,.0f}/s per core of wall time")
    print(f"target ≥ 10,000 signatures/s per core: {'met' if ours >= 10_000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
