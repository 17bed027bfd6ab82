"""What the malformed_rpc probe sends: garbage requests, drawn deterministically from a seed.

Why small seeded generators and not hypothesis strategies: hypothesis is a test-only
dependency (pyproject `test` extra; the harness image installs without it), its public API
draws examples only inside a test run (`.example()` is unseeded and warns, `find`/`@given`
run the engine with its health checks, shrinking and de-duplication), and its internal
ConjectureData changes how a seed maps to values between releases. A certification's
requests must be the same bytes for the same seed on every install, so each category is a
few lines over `random.Random(f"{seed}:{category}")`; the unit tests run hypothesis over
seeds to pin each generator's promise (invalid JSON is never JSON, non-UTF-8 never decodes...).

Every request says whether it is `strict` garbage (no reading of it names a method to call,
so a success answer is wrong) or merely odd (a lax server may run the valid method inside
it, e.g. a wrong-typed id: a result is noted, not failed). Pure: no network, no clock.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Request:
    """One malformed request. `body` None: a GET of `path` (CometBFT's URI routes)."""

    category: str
    body: bytes | None
    strict: bool          # True: garbage no server may answer with a result
    note: str             # what is wrong with it, for the tester
    method: str = "POST"
    path: str = ""        # appended to the node's RPC url

    def text(self) -> str:
        """The request as a tester replays it (the body's bytes, or the GET line)."""
        if self.body is None:
            return f"GET {self.path or '/'}"
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Family:
    """How a family's JSON-RPC looks: a cheap read call the garbage is made from."""

    name: str
    read: str            # a read-only method without parameters
    prefix: str          # its namespace prefix, for plausible unknown names
    uri_routes: bool     # serves URI GET routes beside JSON-RPC POST (CometBFT)


FAMILIES: dict[str, Family] = {
    "evm": Family("evm", "eth_blockNumber", "eth_", False),
    "cometbft": Family("cometbft", "health", "", True),
    "bitcoin": Family("bitcoin", "getblockcount", "get", False),
}

# Generated categories in their order (the `cases` budget is shared among them).
GENERATED = ("invalid_json", "wrong_types", "unknown_method", "non_utf8", "uri_args")


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_json(body: bytes) -> bool:
    """Strict RFC 8259: UTF-8 text holding exactly one JSON value (no NaN/Infinity)."""
    try:
        json.loads(body.decode("utf-8"), parse_constant=_reject)
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError
        return False
    return True


def call(family: Family, rng: random.Random, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "id": rng.randint(1, 2**31), "method": family.read,
                           "params": []}
    doc.update(fields)
    return doc


# -- random JSON values and names ---------------------------------------------------------------

_ODD_TEXT = ("\u0000", "\u202e", "\u200b", "\ufeff", "\U0001f4a5", "链", "\\", '"', "\n", "%s", "${x}")


def _text(rng: random.Random, longest: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits + "_-. "
    chars = [rng.choice(alphabet) for _ in range(rng.randint(0, longest))]
    for _ in range(rng.randint(0, 2)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(_ODD_TEXT))
    return "".join(chars)


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2**53 + 1, -(2**63), 2**64, 10**40])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e-308, 3.14])
    return _text(rng)


def value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (scalars, lists, objects a few levels deep)."""
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind < 4:
        return _scalar(rng)
    if kind == 4:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng, 8): value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _not(rng: random.Random, *kinds: type) -> Any:
    """A random JSON value whose type is none of `kinds` (bool counts apart from int)."""
    while True:
        candidate = value(rng)
        kind = type(candidate)
        if kind not in kinds:
            return candidate


# -- the generated categories ---------------------------------------------------------------

def invalid_json(family: Family, rng: random.Random) -> Request:
    body = dumps(call(family, rng))
    kind = rng.randrange(10)
    if kind == 0:
        cut = rng.randint(1, len(body) - 1)
        return _garbage(body[:cut], f"a request cut after {cut} of {len(body)} bytes")
    if kind == 1:
        spots = [i for i, byte in enumerate(body) if chr(byte) in '{}[]:,"']
        i = rng.choice(spots)
        other = rng.choice([c for c in b'{}[]:,;=\\' if c != body[i]])
        return _garbage(body[:i] + bytes([other]) + body[i + 1:], f"byte {i} replaced by {chr(other)!r}")
    if kind == 2:
        text = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 200)))
        return _garbage(text.encode(), "random printable text")
    if kind == 3:
        literal = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"undefined", b"None", b"True", b"nul",
                              b"{,}", b'{"a"}', b"[1,,2]", b"\x00", b"", b"{", b"]", b"'x'", b"0x10"])
        return _garbage(literal, "a non-JSON literal")
    if kind == 4:
        return _garbage(body[:-1] + b",}", "a trailing comma")
    if kind == 5:
        return _garbage(body.replace(b'"', b"'"), "single-quoted strings")
    if kind == 6:
        return _garbage(b"/* bctest */" + body, "a comment before the request")
    if kind == 7:
        return _garbage(body.replace(b'"params":[]', b'"params":[NaN]'), "NaN in the params")
    if kind == 8:
        junk = rng.choice([b"junk", b"}", b"]", b",", b"\x00", b"{"])
        return Request("invalid_json", body + junk, False, "a valid request followed by junk "
                       "(a streaming parser may run the request and ignore the rest)")
    return Request("invalid_json", body + body, False, "two requests back to back (not one JSON value)")


def _garbage(body: bytes, note: str) -> Request:
    """Strict invalid JSON; a mutation that happens to parse gets a stray '}' appended."""
    if is_json(body):
        body, note = body + b"}", note + ", then a stray '}'"
    return Request("invalid_json", body, True, note)


def wrong_types(family: Family, rng: random.Random) -> Request:
    field = rng.choice(("method", "method", "missing_method", "params", "id", "jsonrpc", "top"))
    if field == "method":
        wrong = _not(rng, str)
        return Request("wrong_types", dumps(call(family, rng, method=wrong)), True,
                       f"method is a {_type(wrong)}")
    if field == "missing_method":
        doc = call(family, rng)
        del doc["method"]
        return Request("wrong_types", dumps(doc), True, "no method")
    if field == "params":
        wrong = rng.choice([_text(rng), rng.randint(-5, 10**6), rng.random() < 0.5, 1.5])
        return Request("wrong_types", dumps(call(family, rng, params=wrong)), False,
                       f"params is a {_type(wrong)} (must be an array or object)")
    if field == "id":
        wrong = _not(rng, str, int, float, type(None))
        return Request("wrong_types", dumps(call(family, rng, id=wrong)), False,
                       f"id is a {_type(wrong)} (must be a string, number or null)")
    if field == "jsonrpc":
        wrong = rng.choice(["1.0", "3.0", "", 2, 2.0, None, ["2.0"], {"v": "2.0"}])
        return Request("wrong_types", dumps(call(family, rng, jsonrpc=wrong)), False,
                       f"jsonrpc is {json.dumps(wrong)}")
    wrong = rng.choice([_scalar(rng), [_scalar(rng) for _ in range(rng.randint(1, 4))]])
    return Request("wrong_types", dumps(wrong), True,
                   f"the body is a {_type(wrong)}, not a request object")


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}[type(value)]


def unknown_method(family: Family, rng: random.Random) -> Request:
    kind = rng.randrange(6)
    tail = "".join(rng.choice(string.ascii_lowercase + "_") for _ in range(rng.randint(6, 24)))
    if kind == 0:
        name, note = f"bctest_{tail}", "an unknown name"
    elif kind == 1:
        name, note = f"{family.prefix}bctest{tail}", "an unknown name in the family's namespace"
    elif kind == 2:
        name = "".join(rng.choice("链鏈ß\u202e\u200b\U0001f4a5ab_") for _ in range(rng.randint(1, 16)))
        name, note = "bctest_" + name, "a non-ASCII name"
    elif kind == 3:
        size = rng.choice([1024, 8192, 65536])
        name, note = "bctest_" + "x" * size, f"a {size + 7}-character name"
    elif kind == 4:
        name = "bctest_" + rng.choice(["\u0000", "\n", "\r\n", "\t", "\u0007"]) + tail
        name, note = name, "a name with a control character"
    else:
        name = rng.choice(["", " ", "__proto__", "constructor", "toString", "bctest.nope", "bctest/nope",
                           "../bctest", "bctest%00"])
        note = f"the name {json.dumps(name)}"
    params = [] if rng.random() < 0.7 else value(rng)
    return Request("unknown_method", dumps(call(family, rng, method=name, params=params)), True, note)


# Byte sequences that are never valid UTF-8: lone 0xff/0xfe, overlong encodings, lone
# continuation bytes, an encoded surrogate, a code point above U+10FFFF, cut sequences.
BAD_UTF8 = (b"\xff", b"\xfe", b"\xc0\x80", b"\xc1\xbf", b"\x80", b"\xbf", b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98")


def non_utf8(family: Family, rng: random.Random) -> Request:
    request = _non_utf8(family, rng)
    try:   # random bytes before a lone continuation byte can complete a sequence: then add 0xff
        request.body.decode("utf-8")  # type: ignore[union-attr]
    except UnicodeDecodeError:
        return request
    return Request("non_utf8", request.body + b"\xff", request.strict, request.note + ", then 0xff")


def _non_utf8(family: Family, rng: random.Random) -> Request:
    bad = rng.choice(BAD_UTF8)
    kind = rng.randrange(5)
    doc = call(family, rng)
    if kind == 0:
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 256)))
        at = rng.randint(0, len(noise))
        return Request("non_utf8", noise[:at] + bad + noise[at:], True, "random bytes")
    if kind == 1:
        at = rng.randint(0, len(family.read))
        name = family.read[:at].encode() + bad + family.read[at:].encode()
        body = b'{"jsonrpc":"2.0","id":1,"method":"' + name + b'","params":[]}'
        return Request("non_utf8", body, True, f"the method name holds {bad!r}")
    if kind == 2:
        body = b'{"jsonrpc":"2.0","id":"' + bad + b'","method":"' + family.read.encode() + b'","params":[]}'
        return Request("non_utf8", body, False, f"the id string holds {bad!r} (a lax decoder replaces it)")
    if kind == 3:
        body = dumps(doc)
        at = rng.choice([1, len(body) - 1])
        return Request("non_utf8", body[:at] + bad + body[at:], True, f"{bad!r} between JSON tokens")
    encoded = json.dumps(doc).encode("utf-16")
    return Request("non_utf8", encoded, False, "the request in UTF-16 (with a byte-order mark)")


# CometBFT's URI routes and their typed arguments (read-only routes; never broadcast_*).
URI_ROUTES: dict[str, dict[str, str]] = {
    "block": {"height": "int"}, "block_results": {"height": "int"}, "commit": {"height": "int"},
    "header": {"height": "int"}, "consensus_params": {"height": "int"},
    "blockchain": {"minHeight": "int", "maxHeight": "int"},
    "validators": {"height": "int", "page": "int", "per_page": "int"},
    "unconfirmed_txs": {"limit": "int"}, "genesis_chunked": {"chunk": "int"},
    "block_by_hash": {"hash": "bytes"}, "header_by_hash": {"hash": "bytes"},
    "tx": {"hash": "bytes", "prove": "bool"},
    "abci_query": {"path": "str", "data": "bytes", "height": "int", "prove": "bool"},
    "tx_search": {"query": "str", "prove": "bool", "page": "int", "per_page": "int", "order_by": "str"},
    "block_search": {"query": "str", "page": "int", "per_page": "int", "order_by": "str"},
}
# Values no parser of that type accepts (quoted strings are CometBFT's string syntax).
URI_GARBAGE: dict[str, tuple[str, ...]] = {
    "int": ("abc", "1e3", "0x10", "99999999999999999999", "1.5", "--1", "[1]", "{}", "1;2", "nan",
            "\x00", "\"abc\""),
    "bytes": ("zz", "0xZZ", "0x1g", "\"unterminated", "0x\u00ff\u00fe", "\x00\x01", "[]"),
    "str": ("abc", "\"abc", "'abc'", "\"\\x\"", "\"\\u12\"", "{\"a\":1}", "null"),
    "bool": ("maybe", "yes", "2", "TRUE", "\"x\"", "[]"),
}


def uri_args(family: Family, rng: random.Random) -> Request:
    if rng.random() < 0.15:   # an unknown route: a 404, never a result
        tail = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 12)))
        path = "/bctest_" + (tail if rng.random() < 0.8 else tail * 700)
        return Request("uri_args", None, True, "an unknown route", method="GET", path=path)
    route = rng.choice(sorted(URI_ROUTES))
    name, kind = rng.choice(sorted(URI_ROUTES[route].items()))
    garbage = rng.choice(URI_GARBAGE[kind])
    path = f"/{route}?{name}={quote(garbage, safe='')}"
    return Request("uri_args", None, True, f"{name} is not a valid {kind}", method="GET", path=path)


GENERATORS = {"invalid_json": invalid_json, "wrong_types": wrong_types,
              "unknown_method": unknown_method, "non_utf8": non_utf8, "uri_args": uri_args}


def generated(family: Family, seed: int, cases: int) -> dict[str, list[Request]]:
    """`cases` requests shared among the family's generated categories, the same for a seed."""
    names = [name for name in GENERATED if name != "uri_args" or family.uri_routes]
    out: dict[str, list[Request]] = {}
    for k, name in enumerate(names):
        rng = random.Random(f"{seed}:{name}")
        count = cases // len(names) + (1 if k < cases % len(names) else 0)
        out[name] = [GENERATORS[name](family, rng) for _ in range(count)]
    return out


# -- the fixed, heavy cases ------------------------------------------------------------------

def empty_batch() -> Request:
    return Request("empty_batch", b"[]", False, "an empty batch")


def huge_batch(family: Family, entries: int) -> Request:
    parts = (dumps({"jsonrpc": "2.0", "id": i, "method": family.read, "params": []}) for i in range(entries))
    return Request("huge_batch", b"[" + b",".join(parts) + b"]", False,
                   f"a batch of {entries} {family.read} calls")


def deep_nesting(family: Family, depth: int) -> Iterator[Request]:
    yield Request("deep_nesting", b"[" * depth, True, f"{depth} unclosed '['")
    yield Request("deep_nesting", f'{{"jsonrpc":"2.0","id":1,"method":"{family.read}","params":['.encode()
                  + b"[" * depth + b"]" * depth + b"]}", False, f"params nested {depth} arrays deep")
    yield Request("deep_nesting", b'{"a":' * depth + b"1" + b"}" * depth, True,
                  f"an object nested {depth} levels deep (not a request)")


def oversized(mib: int) -> Request:
    head, tail = b'{"jsonrpc":"2.0","id":1,"method":"bctest_oversized","params":["', b'"]}'
    size = mib << 20
    return Request("oversized_body", head + b"a" * max(0, size - len(head) - len(tail)) + tail, True,
                   f"a {mib} MiB body calling an unknown method")
