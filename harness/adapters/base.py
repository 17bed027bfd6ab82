"""What the harness needs from a chain family, and nothing more.

The hot path is split on purpose: sender processes only POST pre-built request
bodies (so they never import the adapter's heavy parts); the main process asks the
adapter to generate node files, prepare signed transactions and watch blocks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from harness.chainpack import ChainPack
from harness.model import Block, Node, OnBlock, Prepared  # noqa: F401  (re-exported for adapters)

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class Committed:
    """A transaction of the run that committed: what a read workload can ask for."""

    tx_id: str
    block: int           # its block number on the node that reported it
    block_hash: str      # that block's hash (Bitcoin Core needs it without -txindex)


class Adapter(Protocol):
    """A chain family. Subclass AdapterBase to get the optional hooks' defaults."""

    family: ClassVar[str]
    workloads: ClassVar[tuple[str, ...]]  # workload kinds it can generate, default first
    submit_path: ClassVar[str]          # path appended to the node's rpc url for submissions
    submit_headers: dict[str, str]      # class-level, or per instance (e.g. per-run credentials)

    def __init__(self, pack: ChainPack, params: dict[str, Any], nodes: int, seed: int,
                 accounts: int) -> None: ...

    def node_files(self) -> dict[int, dict[str, bytes]]:
        """Files each node gets under /bctest/ (genesis, keys, config), by node index."""

    async def ready(self, node: Node) -> str | None:
        """None when the node is ready; otherwise why not (shown if readiness times out)."""

    async def height(self, node: Node) -> int:
        """The node's current block height (used to see the network make progress)."""

    async def bootstrap(self, nodes: list[Node], count: int) -> dict[str, Any]:
        """After readiness, before signing `count` transactions: fund accounts, mine
        coinbases... Returns facts for the report (e.g. how blocks are produced)."""

    def prepare(self, count: int) -> list[Prepared]:
        """Build and sign `count` transactions before the measured window."""

    async def drive(self, nodes: list[Node], stop: asyncio.Event) -> None:
        """Runs beside the load until `stop`: e.g. produce blocks on a regtest chain."""

    async def block_at(self, node: Node, number: int) -> Block:
        """The block at `number` on the node's canonical chain now (for the final read
        the correctness checkers judge; raise if the node cannot say)."""

    async def watch(self, node: Node, on_block: OnBlock, stop: asyncio.Event,
                    subscribe: bool, poll_interval: float) -> str:
        """Report every new block on `node` until `stop` is set; return the method used."""

    async def close(self) -> None:
        """Release connections the adapter opened."""

    # The authenticity audit (optional): the adapter fetches, a pure verifier registered for
    # its family in the entry-point group `bctest.audits` judges (harness/audit/__init__.py).
    async def raw_blocks(self, node: Node, numbers: list[int]) -> list[dict[str, Any]]:
        """Blocks `numbers` (ascending) as the family's audit verifier reads them: enough
        raw data to recompute hashes, roots and signatures."""

    def audit_expectations(self) -> dict[str, Any]:
        """What the harness generated for this run that the chain must match (e.g. the
        signing accounts, the validator keys, the chain id), for the audit verifier."""

    @staticmethod
    def response_error(status: int, body: bytes) -> str | None:
        """None if the submission was accepted, else a short reason (runs in sender processes)."""

    # The read workload (optional): `query_kinds` empty means the family has none.
    query_kinds: ClassVar[tuple[str, ...]]   # read kinds it can build, default first

    def query_subjects(self, kind: str, committed: list[Committed]) -> list[Any]:
        """What a query of `kind` may ask for (e.g. the committed txs, the run's accounts)."""

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        """One pre-built read request; `tx_id` names the subject asked for."""

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """None if the reply answers the query (no error AND it holds the thing asked for,
        e.g. a non-null receipt), else a short reason (runs in sender processes)."""


class AdapterBase:
    """Defaults for the optional hooks (nothing to bootstrap, nothing to drive) and one
    HTTP session for readiness probes and control calls (the load has its own)."""

    _session: aiohttp.ClientSession | None = None
    query_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, pack: ChainPack, params: dict[str, Any], nodes: int, seed: int,
                 accounts: int):
        self.pack = pack
        self.params = params          # the pack's params with the suite's overrides
        self.options = pack.options   # family-specific settings from chain.yaml
        self.nodes = nodes
        self.seed = seed              # the workload's keys and transactions derive from it
        # The nodes' own identities (validator, signer, p2p keys) derive from this one; the
        # run sets it to the suite's seed, so a network is laid out alike on every run while
        # the workload stays secret (harness/phases/setup.py).
        self.identity_seed = seed
        self.accounts = accounts
        # Each node's three-tier role by index (harness/topology.py), set by the run before
        # node_files(); None: no topology, every node alike (e.g. every node a validator).
        self.roles: tuple[str, ...] | None = None

    def control_session(self) -> aiohttp.ClientSession:
        import aiohttp  # here, not at the top: importing a family's pure parts needs no HTTP stack

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def bootstrap(self, nodes: list[Node], count: int) -> dict[str, Any]:
        return {}

    async def drive(self, nodes: list[Node], stop: asyncio.Event) -> None:
        await stop.wait()

    async def raw_blocks(self, node: Node, numbers: list[int]) -> list[dict[str, Any]]:
        raise NotImplementedError(f"the {self.pack.family} adapter cannot fetch raw blocks for the "
                                  "authenticity audit")

    def audit_expectations(self) -> dict[str, Any]:
        return {}

    def query_subjects(self, kind: str, committed: list[Committed]) -> list[Any]:
        if kind == "tx":
            return list(committed)
        raise ValueError(f"the {self.pack.family} adapter has no '{kind}' queries")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
