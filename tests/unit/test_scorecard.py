"""`bctest scorecard build`: signed certify folders become listing.jsonl and a static site.

The fixtures (tests/fixtures/scorecard/) are certify folders without histories; each test
signs copies with a throwaway key, as the test center's worker would. Refusals go through
the real CLI in its own process (exit code and the one line a tester reads).
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from harness import signing, validation
from harness.errors import InputError
from harness.scorecard import collect, listing, site

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scorecard"
# A folder `bctest certify` wrote with this checkout, on demand (CI covers the same path with a
# fresh certification in tests/integration/test_worker.py).
REAL_RUN = Path(os.environ.get("BCTEST_CERTIFY_RUN", "/nonexistent"))
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HOSTILE = ("<script>alert(1)</script>\"'{{7*7}}{% raw %}\u202e\u200fevil\u202c</script><!--"
           + "x" * 10_000)


def signed_fixtures(folder: Path, hostile: bool = False) -> tuple[Path, Path]:
    """Copies of the fixtures under folder/in, signed with a fresh key; returns (in, public
    key). With `hostile`, a sixth folder whose vendor, chain and version strings attack the
    pages (markup, script end tags, template syntax, RTL marks, a 10 kB name)."""
    root = folder / "in"
    shutil.copytree(FIXTURES, root)
    if hostile:
        evil = root / "hostile"
        shutil.copytree(FIXTURES / "acme-anvil-1.7.1", evil)
        for name in ("results.json", "certify.json"):
            document = json.loads((evil / name).read_text(encoding="utf-8"))
            certify = document.get("certify", document)
            certify["vendor"]["name"] = HOSTILE
            certify["pack"].update(name="</script><img src=x onerror=alert(2)>", family="../../etc",
                                   version="\"><svg onload=alert(3)>", consensus="bft")
            document["started_at"] = "2026-11-29T01:00:00.000+00:00"
            (evil / name).write_text(json.dumps(document), encoding="utf-8")
    public, _ = signing.init_keys(folder / "keys")
    for certification in sorted(p for p in root.iterdir() if p.is_dir()):
        signing.sign(certification, folder / "keys" / signing.PRIVATE)
    return root, public


def bctest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, site.Built]:
    folder = tmp_path_factory.mktemp("scorecard")
    root, public = signed_fixtures(folder)
    return root, public, site.build([root], folder / "site", public)


def by_folder(built: site.Built) -> dict[str, dict[str, Any]]:
    return {line["run_id"].removeprefix("certify-"): line for line in built.lines}


# ------------------------------------------------------------------ listing.jsonl

def test_listing_lines_follow_the_schema_and_the_fixture_figures(built) -> None:
    root, _, result = built
    lines = listing.read(result.out / "listing.jsonl")   # validates each line against the schema
    assert len(lines) == 5 and lines == result.lines
    for line in lines:
        validation.validate(line, "listing", "test")
    found = by_folder(result)
    acme = found["acme-anvil-1.7.1"]
    assert acme["vendor"] == {"name": "acme", "submission": hashlib.sha256(b"sub1").hexdigest()}
    assert acme["chain"]["name"] == "anvil" and acme["chain"]["version"] == "1.7.1"
    assert (acme["chain"]["family"], acme["chain"]["consensus"]) == ("evm", "single")
    assert acme["date"] == "2026-11-20" and acme["profile"] == "full" and acme["grade"] == "A"
    assert acme["capacity"] == {"value": 480.0, "limited_by": "chain", "confirmed": True, "nodes": 4,
                                "claimed": 500.0, "why": "the search stopped: limited by the chain"}
    assert acme["latency_p99_ms"] == 1500.0
    assert acme["fault_tolerance"] == {"requirement": "REL-FT-THRESHOLD", "verdict": "not-applicable",
                                       "f": None, "nodes": 4}
    assert acme["categories"]["performance"] == {"pass": 2, "fail": 0, "inconclusive": 0,
                                                 "not-applicable": 0}
    assert found["acme-anvil-1.8.0"]["categories"]["performance"]["fail"] == 1
    assert found["acme-anvil-1.8.0"]["grade"] == "B"

    globex = found["globex-cometbft-0.38.26"]
    assert globex["grade"] == "F" and globex["verdict"] == "fail"
    assert globex["security"] == {"verdict": "fail", "findings": {"critical": 0, "high": 2, "medium": 1,
                                                                  "low": 0, "info": 3}}
    assert globex["fault_tolerance"]["verdict"] == "fail" and globex["fault_tolerance"]["f"] == 1  # bft, n=4
    assert globex["capacity"]["limited_by"] == "harness"

    reference = found["reference-litecoin-0.21.4"]
    assert reference["vendor"] == {"name": "reference", "submission": None}
    assert reference["capacity"]["value"] is None and reference["capacity"]["limited_by"] == "profile"
    quick = found["initech-geth-quick"]
    assert quick["profile"] == "quick" and quick["security"]["verdict"] is None

    # newest first; digest and key id are those of the signed folder as published
    assert [line["date"] for line in lines] == sorted((line["date"] for line in lines), reverse=True)
    for line in lines:
        copy = result.out / line["links"]["folder"]
        signature = json.loads((copy / "signature.json").read_text(encoding="utf-8"))
        assert line["digest"] == hashlib.sha256(signing.canonical(signature["manifest"])).hexdigest()
        assert line["key_id"] == signature["key_id"]
        assert line["links"]["folder"] == f"runs/{line['digest'][:16]}"


def test_listing_refuses_a_line_that_breaks_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "listing.jsonl"
    path.write_text(json.dumps({"format": "bctest-scorecard/1", "digest": "zz"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"listing.jsonl:1"):
        listing.read(path)


# ------------------------------------------------------------------ the site

class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.open: list[str] = []
        self.unbalanced: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)
        self.attributes.update(name for name, _ in attrs)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])


    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.unbalanced.append(f"</{tag}> closes <{self.open[-1] if self.open else None}> "
                                   f"at {self.getpos()}")
        elif self.open:
            self.open.pop()


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_signed_folder_is_copied_whole_and_every_link_resolves(built) -> None:
    root, _, result = built
    out = result.out
    pages = [out / "index.html", out / "compare.html", *sorted((out / "chains").glob("*.html"))]
    assert sorted(p.name for p in (out / "chains").glob("*.html")) == [
        "bitcoin-litecoin.html", "cometbft-cometbft.html", "evm-anvil.html", "evm-geth-clique.html"]
    for line in result.lines:
        copy = out / line["links"]["folder"]
        original = root / line["run_id"].removeprefix("certify-")
        assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in original.iterdir())
        assert signing.check_signature(copy, signing.load_public(built[1])) == []
    for page in pages:
        links = parse(page)
        assert links.unbalanced == [] and links.open == [], (page, links.unbalanced[:3], links.open)
        for href in links.hrefs:
            parts = urlsplit(href)
            assert not parts.scheme and not parts.netloc, (page, href)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file() and out.resolve() in target.parents, (page, href)
            if parts.fragment:
                assert parts.fragment in parse(target).ids, (page, href)
    index = (out / "index.html").read_text(encoding="utf-8")
    for line in result.lines:
        assert f'href="{line["links"]["report"]}"' in index and f'href="{line["links"]["results"]}"' in index
    anvil = (out / "chains" / "evm-anvil.html").read_text(encoding="utf-8")
    for line in result.lines:
        if line["chain"]["name"] == "anvil":
            assert f"bctest verify runs/{line['digest'][:16]} --key keys/{line['key_id']}.pub" in anvil
            assert line["digest"] in anvil
    assert anvil.count("<circle") == 4   # two versions, two charts


def test_the_listing_is_embedded_as_json_not_fetched(built) -> None:
    index = (built[2].out / "index.html").read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="listing">(.*?)</script>', index, re.S)
    assert block and json.loads(block.group(1)) and "fetch(" not in index and "XMLHttpRequest" not in index


def test_a_previous_scorecard_is_replaced_and_anything_else_refused(built, tmp_path: Path) -> None:
    root, public, _ = built
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="previous scorecard"):
        site.build([root], out, public)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    (out / "notes.txt").unlink()
    site.build([root / "acme-anvil-1.7.1"], out, public)
    assert len(listing.read(out / "listing.jsonl")) == 1
    (out / "stale.html").write_text("old", encoding="utf-8")
    site.build([root], out, public)   # a previous scorecard: replaced whole
    assert len(listing.read(out / "listing.jsonl")) == 5 and not (out / "stale.html").exists()
    assert not list(tmp_path.glob(".site.*"))   # no staging left behind


# ------------------------------------------------------------------ refusals

def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_tampered_folder_is_refused_naming_it(tmp_path: Path) -> None:
    root, public = signed_fixtures(tmp_path)
    target = root / "globex-cometbft-0.38.26"
    results = json.loads((target / "results.json").read_text(encoding="utf-8"))
    results["certification"]["grade"] = "A"   # the vendor improves its grade
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    done = bctest("scorecard", "build", str(root), "--out", str(tmp_path / "site"), "--key", str(public))
    line = one_error_line(done)
    assert str(target) in line and "results.json changed since it was signed" in line, line
    assert not (tmp_path / "site").exists()


def test_an_unsigned_folder_is_refused(tmp_path: Path) -> None:
    root, public = signed_fixtures(tmp_path)
    (root / "initech-geth-quick" / "signature.json").unlink()
    done = bctest("scorecard", "build", str(root), "--out", str(tmp_path / "site"), "--key", str(public))
    line = one_error_line(done)
    assert str(root / "initech-geth-quick") in line and "unsigned" in line, line


def test_a_folder_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    root, _ = signed_fixtures(tmp_path)
    other, _ = signing.init_keys(tmp_path / "other")
    with pytest.raises(InputError, match="not signed by the trusted key") as caught:
        site.build([root], tmp_path / "site", other)
    assert str(root) in str(caught.value)


def test_an_added_file_and_a_planted_link_are_tampering(tmp_path: Path) -> None:
    root, public = signed_fixtures(tmp_path)
    (root / "acme-anvil-1.8.0" / "extra.html").write_text("<script>x</script>", encoding="utf-8")
    with pytest.raises(InputError, match="extra.html is not covered by the signature"):
        site.build([root], tmp_path / "site", public)
    (root / "acme-anvil-1.8.0" / "extra.html").unlink()
    (root / "acme-anvil-1.8.0" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="passwd is a link"):
        site.build([root], tmp_path / "site", public)
    (root / "acme-anvil-1.8.0" / "passwd").unlink()
    os.mkfifo(root / "acme-anvil-1.8.0" / "pipe")   # copying it would block on the read
    with pytest.raises(InputError, match="pipe is a link or a special file"):
        site.build([root], tmp_path / "site", public)
    assert not (tmp_path / "site").exists()


def test_skip_invalid_lists_the_refused_folders_and_builds_the_rest(tmp_path: Path) -> None:
    root, public = signed_fixtures(tmp_path)
    (root / "initech-geth-quick" / "signature.json").unlink()
    (root / "acme-anvil-1.8.0" / "summary.md").write_text("grade A\n", encoding="utf-8")
    done = bctest("scorecard", "build", str(root), "--out", str(tmp_path / "site"), "--key", str(public),
                  "--skip-invalid")
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = [line for line in done.stdout.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2, done.stdout
    assert any("initech-geth-quick" in s and "unsigned" in s for s in skipped)
    assert any("acme-anvil-1.8.0" in s and "summary.md changed" in s for s in skipped)
    assert "3 certification(s), 2 skipped" in done.stdout
    lines = listing.read(tmp_path / "site" / "listing.jsonl")
    assert sorted(line["run_id"] for line in lines) == [
        "certify-acme-anvil-1.7.1", "certify-globex-cometbft-0.38.26", "certify-reference-litecoin-0.21.4"]
    assert len(list((tmp_path / "site" / "runs").iterdir())) == 3


def test_bad_arguments_are_one_clear_error(tmp_path: Path) -> None:
    line = one_error_line(bctest("scorecard", "build", str(tmp_path / "nowhere"), "--out",
                                 str(tmp_path / "site"), "--key", str(tmp_path / "none.pub")))
    assert "none.pub" in line and "public key" in line
    signing.init_keys(tmp_path / "keys")
    line = one_error_line(bctest("scorecard", "build", str(tmp_path / "nowhere"), "--out",
                                 str(tmp_path / "site"), "--key", str(tmp_path / "keys" / signing.PUBLIC)))
    assert "nowhere" in line and "not a folder" in line
    assert bctest("scorecard").returncode == 2   # the action is required


def test_a_folder_found_twice_is_listed_once(built, tmp_path: Path) -> None:
    root, public, _ = built
    result = site.build([root, root / "acme-anvil-1.7.1"], tmp_path / "site", public)
    assert len(result.lines) == 5 and len(result.duplicates) == 0   # find() already merges paths
    twin = tmp_path / "twin"
    shutil.copytree(root / "acme-anvil-1.7.1", twin / "copy")
    result = site.build([root, twin], tmp_path / "site", public)
    assert len(result.lines) == 5 and result.duplicates == [twin / "copy"]


# ------------------------------------------------------------------ hostile strings

def test_hostile_vendor_strings_are_escaped_everywhere(tmp_path: Path) -> None:
    root, public = signed_fixtures(tmp_path, hostile=True)
    result = site.build([root], tmp_path / "site", public)
    out = result.out
    evil = next(line for line in result.lines if line["vendor"]["name"] == HOSTILE)
    assert evil["chain"]["family"] == "../../etc"   # kept verbatim in the listing
    stored = [json.loads(text) for text in
              (out / "listing.jsonl").read_text(encoding="utf-8").splitlines()]
    assert HOSTILE in [line["vendor"]["name"] for line in stored]
    # the chain page's name is a hash, inside chains/: "../../etc" never became a path
    page = out / next(r for r in _rows(out) if r["digest"] == evil["digest"])["chain_page"]
    assert re.fullmatch(r"chain-[0-9a-f]{16}\.html", page.name) and page.parent == out / "chains"
    assert not (tmp_path / "etc").exists() and not list(tmp_path.glob("**/etc-*"))
    pages = [out / "index.html", out / "compare.html", *sorted((out / "chains").glob("*.html"))]
    for path in pages:
        text = path.read_text(encoding="utf-8")
        parsed = parse(path)
        # nothing the vendor wrote became an element or an attribute: they are the template's own
        assert "img" not in parsed.tags, path
        assert parsed.tags.count("svg") == (2 if path.parent.name == "chains" else 0), path
        assert not {a for a in parsed.attributes if a.startswith("on")} - {"onsubmit"}, path
        assert parsed.tags.count("script") == (3 if path.parent == out else 1), path
        assert "<script>alert" not in text and "<img" not in text and "<svg onload" not in text
        for block in re.findall(r'<script type="application/json" id="listing">(.*?)</script>', text, re.S):
            assert "<" not in block and ">" not in block
            embedded = json.loads(block)
            rows = embedded["rows"] if isinstance(embedded, dict) else embedded
            assert HOSTILE in [row["vendor"]["name"] for row in rows]   # intact once parsed
        if path == page or path.parent == out:
            assert "{{7*7}}" in text and "{% raw %}" in text   # shown as written, never evaluated
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;{{7*7}}" in index
    assert "\u202e" in index and "<bdi" in index   # shown, but isolated from the text around it


def _rows(out: Path) -> list[dict[str, Any]]:
    lines = listing.read(out / "listing.jsonl")
    pages = site.chain_pages(lines)
    return [{**line, "chain_page": pages[(line["chain"]["family"], line["chain"]["name"])]} for line in lines]


def test_script_json_cannot_close_its_block() -> None:
    text = str(site.script_json({"a": "</script><!-- & \u2028"}))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_chain_page_names() -> None:
    assert site.chain_slug("evm", "anvil") == "evm-anvil"
    for family, name in (("../x", "a"), ("EVM", "a"), ("evm", "a/b"), ("evm", "x" * 60), ("evm", ".."),
                         ("e", "a\u202e"), (None, "a")):
        assert re.fullmatch(r"chain-[0-9a-f]{16}", site.chain_slug(family, name)), (family, name)
    line = {"chain": {}}
    pages = site.chain_pages([{**line, "chain": {"family": "a-b", "name": "c"}},
                              {**line, "chain": {"family": "a", "name": "b-c"}},
                              {**line, "chain": {"family": "evm", "name": "anvil"}}])
    assert len(set(pages.values())) == 3 and pages[("evm", "anvil")] == "chains/evm-anvil.html"
    for clash in (("a-b", "c"), ("a", "b-c")):
        assert re.fullmatch(r"chains/chain-[0-9a-f]{16}\.html", pages[clash])


def test_find_does_not_descend_into_a_certification_or_follow_links(tmp_path: Path) -> None:
    root, _ = signed_fixtures(tmp_path)
    (root / "acme-anvil-1.7.1" / "cases" / "nested").mkdir(parents=True)
    for name in ("certify.json", "results.json"):
        (root / "acme-anvil-1.7.1" / "cases" / "nested" / name).write_text("{}", encoding="utf-8")
    (tmp_path / "elsewhere").symlink_to(root, target_is_directory=True)
    (root / "link").symlink_to(root / "acme-anvil-1.8.0", target_is_directory=True)
    assert [p.name for p in collect.find([root])] == sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    with pytest.raises(InputError, match="not a folder"):
        collect.find([tmp_path / "elsewhere"])


def test_an_empty_scorecard_and_an_unreadable_certify_block(tmp_path: Path) -> None:
    public, _ = signing.init_keys(tmp_path / "keys")
    (tmp_path / "nothing").mkdir()
    result = site.build([tmp_path / "nothing"], tmp_path / "site", public)
    assert result.lines == [] and (tmp_path / "site" / "listing.jsonl").read_text(encoding="utf-8") == ""
    assert 'id="empty"' in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")

    root, public = signed_fixtures(tmp_path / "broken")
    target = root / "acme-anvil-1.8.0"
    results = json.loads((target / "results.json").read_text(encoding="utf-8"))
    results["certify"]["pack"] = "anvil"   # signed, but not the contract's shape
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    signing.sign(target, tmp_path / "broken" / "keys" / signing.PRIVATE)
    with pytest.raises(InputError, match=r"acme-anvil-1.8.0/results.json at certify.pack: an object"):
        site.build([root], tmp_path / "site2", public)
    results["certify"]["pack"] = {"name": "anvil", "version": "1.8.0", "family": "evm", "consensus": "single"}
    results["certify"]["profile"] = "turbo"
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    signing.sign(target, tmp_path / "broken" / "keys" / signing.PRIVATE)
    result = site.build([root], tmp_path / "site2", public, skip_invalid=True)
    assert len(result.lines) == 4 and len(result.skipped) == 1
    assert "profile" in result.skipped[0].problem and str(target) in result.skipped[0].problem
    results["certify"]["profile"] = "turbo\nsecond line" + "x" * 5000   # quoted in the error
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    signing.sign(target, tmp_path / "broken" / "keys" / signing.PRIVATE)
    line = one_error_line(bctest("scorecard", "build", str(root), "--out", str(tmp_path / "site3"),
                                 "--key", str(public)))
    assert str(target) in line and "profile" in line and len(line) < 700, line[:200]


def test_a_real_certify_folder(tmp_path: Path) -> None:
    """The reader against what `bctest certify` really writes (BCTEST_CERTIFY_RUN, by default
    the folder of `bctest certify chains/anvil --profile quick --out /tmp/sc/real/anvil-quick`),
    and the site's "how to verify this" command run on the published copy."""
    if not (REAL_RUN / "certify.json").is_file():
        pytest.skip("set BCTEST_CERTIFY_RUN to a folder `bctest certify` wrote with this checkout")
    folder = tmp_path / "in" / "real"
    shutil.copytree(REAL_RUN, folder)
    (folder / "signature.json").unlink(missing_ok=True)
    public, _ = signing.init_keys(tmp_path / "keys")
    signing.sign(folder, tmp_path / "keys" / signing.PRIVATE)
    result = site.build([tmp_path / "in"], tmp_path / "site", public)
    [line] = listing.read(tmp_path / "site" / "listing.jsonl")
    stored = json.loads((REAL_RUN / "results.json").read_text(encoding="utf-8"))
    certify = stored["certify"]
    assert line["chain"]["name"] == certify["pack"]["name"] and line["profile"] == certify["profile"]
    assert line["grade"] == stored["certification"]["grade"]
    assert line["capacity"]["value"] == (certify["capacity"] or {}).get("capacity")
    assert line["security"]["findings"] == {k: (stored.get("security") or {}).get("findings", {}).get(k, 0)
                                            for k in line["security"]["findings"]}
    assert result.lines == [line]
    done = subprocess.run([sys.executable, "-m", "harness.cli", "verify", line["links"]["folder"], "--key",
                           f"keys/{line['key_id']}.pub"], cwd=tmp_path / "site", capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "every file intact" in done.stdout, done.stdout + done.stderr
