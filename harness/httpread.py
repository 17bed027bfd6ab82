"""Reading a node's HTTP reply, bounded: never more than a limit into memory.

aiohttp's `content.read(n)` returns *up to* n bytes (what has arrived), not the body up to
n: a bounded read must loop until the end of the body or one byte past the limit.
Imports only the standard library: the sender processes use it too.
"""

from __future__ import annotations

from typing import Any


async def read_bounded(content: Any, limit: int) -> bytes:
    """The body from an aiohttp StreamReader; longer than `limit` only if the body is (then
    exactly limit + 1 bytes, so the caller can tell and refuse it)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
