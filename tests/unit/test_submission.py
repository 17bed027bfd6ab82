"""Submissions: every bad input is one clear problem naming file, field and expectation, all
problems are listed at once, hostile tarballs extract nothing outside, and storing is
content-addressed, read-only and idempotent."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest
import yaml

from harness import submission
from harness.submission import SubmissionInvalid

TAG = "bctest-vendor/demo:1.0"
PACK = {
    "name": "demo", "version": "1.0", "family": "evm",
    "consensus": {"kind": "bft", "min_nodes": 1, "max_nodes": 8},
    "image": {"tag": TAG, "tarball": "image.tar"},
    "ports": {"rpc": 8545},
}


def image_tar(tag: str = TAG) -> bytes:
    """The naming files of a `docker save` tarball (all the validation reads)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = json.dumps([{"Config": "c.json", "RepoTags": [tag], "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make(folder: Path, manifest: dict | str | None = None, pack: dict | None = None,
         claims: str | None = "latency_p99_ms: 3000\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"vendor": {"name": "acme", "contact": "ops@acme.example"}, "pack": "pack",
                "claims": "claims.yaml", "profile": "quick"} if manifest is None else manifest
    text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
    (folder / "submission.yaml").write_text(text)
    (folder / "pack").mkdir(exist_ok=True)
    (folder / "pack" / "chain.yaml").write_text(yaml.safe_dump(PACK if pack is None else pack))
    (folder / "pack" / "image.tar").write_bytes(image_tar())
    if claims is not None:
        (folder / "claims.yaml").write_text(claims)
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(SubmissionInvalid) as caught:
        submission.load(folder)
    return [str(p) for p in caught.value.problems]


def test_a_valid_submission_loads(tmp_path):
    loaded = submission.load(make(tmp_path / "s"))
    assert (loaded.vendor, loaded.contact, loaded.profile) == ("acme", "ops@acme.example", "quick")
    assert loaded.pack.name == "demo" and loaded.pack.image_tag == TAG
    assert loaded.claims == tmp_path / "s" / "claims.yaml"
    assert len(loaded.digest) == 64


def test_profile_defaults_to_full_and_claims_are_optional(tmp_path):
    folder = make(tmp_path / "s", {"vendor": {"name": "acme"}, "pack": "pack"}, claims=None)
    loaded = submission.load(folder)
    assert (loaded.profile, loaded.claims, loaded.contact) == ("full", None, None)


@pytest.mark.parametrize(("manifest", "field", "expected"), [
    ({"pack": "pack"}, "vendor", "required field is missing"),
    ({"vendor": {"name": "Acme!"}, "pack": "pack"}, "vendor.name", "does not match"),
    ({"vendor": {"name": "a"}, "pack": "pack"}, "vendor.name", "2-39 characters"),
    ({"vendor": {"name": "acme", "phone": 1}, "pack": "pack"}, "vendor.phone", "unknown key"),
    ({"vendor": {"name": "acme"}}, "pack", "required field is missing"),
    ({"vendor": {"name": "acme"}, "pack": "pack", "profile": "fast"}, "profile", "quick, full"),
    ({"vendor": {"name": "acme"}, "pack": "../elsewhere"}, "pack", "leaves it"),
    ({"vendor": {"name": "acme"}, "pack": "nopack"}, "pack", "chain.yaml"),
    ({"vendor": {"name": "acme"}, "pack": "pack", "claims": "missing.yaml"}, "claims", "does not exist"),
    ({"vendor": {"name": "acme"}, "pack": "pack", "claims": "/etc/passwd"}, "claims", ""),
])
def test_each_bad_manifest_field_is_one_clear_problem(tmp_path, manifest, field, expected):
    found = problems(make(tmp_path / "s", manifest))
    assert len(found) == 1, found
    assert "submission.yaml" in found[0] and f"at {field}" in found[0] and expected in found[0]


def test_every_problem_is_listed_at_once(tmp_path):
    folder = make(tmp_path / "s", {"vendor": {"name": "X"}, "pack": "pack", "profile": "fast",
                                   "claims": "claims.yaml", "extra": 1},
                  pack={**PACK, "image": {"tag": "bctest/demo:1.0", "tarball": "image.tar"}},
                  claims="- a list\n")
    found = problems(folder)
    text = "\n".join(found)
    assert len(found) == 5, found
    for expected in ("at vendor.name", "at profile", "unknown key 'extra'", "chain.yaml at image.tag",
                     "claims.yaml"):
        assert expected in text
    with pytest.raises(SubmissionInvalid) as caught:
        submission.load(folder)
    assert "5 problems" in str(caught.value) and caught.value.exit_code == 2


def test_the_pack_must_ship_its_image_as_a_tarball(tmp_path):
    pack = {**PACK, "image": {"tag": TAG, "build": {"dockerfile": "Dockerfile"}}}
    folder = make(tmp_path / "s", pack=pack)
    (folder / "pack" / "Dockerfile").write_text("FROM scratch\n")
    [found] = problems(folder)
    assert "chain.yaml at image" in found and "docker save" in found


def test_a_tarball_naming_another_image_is_refused(tmp_path):
    folder = make(tmp_path / "s")
    (folder / "pack" / "image.tar").write_bytes(image_tar("bctest/anvil:1.7.1"))
    [found] = problems(folder)
    assert "image.tarball" in found and "must name exactly" in found


@pytest.mark.parametrize("text, expected", [
    ("vendor: [", "not valid YAML"),
    ("- a\n- b\n", "a mapping"),
    ("", "a mapping"),
])
def test_an_unreadable_manifest_is_one_problem(tmp_path, text, expected):
    [found] = problems(make(tmp_path / "s", text))
    assert expected in found


def test_no_manifest_at_all(tmp_path):
    folder = make(tmp_path / "s")
    (folder / "submission.yaml").unlink()
    [found] = problems(folder)
    assert "submission.yaml" in found and "does not exist" in found


def test_digest_is_over_content_not_times_or_source(tmp_path):
    a, b = make(tmp_path / "a"), make(tmp_path / "b")
    assert submission.digest(a) == submission.digest(b)
    (b / "claims.yaml").write_text("latency_p99_ms: 3001\n")
    assert submission.digest(a) != submission.digest(b)


def tarball_of(folder: Path, path: Path, gz: bool = False, wrap: str | None = None) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for entry in sorted(folder.rglob("*")):
            tar.add(entry, arcname=(f"{wrap}/" if wrap else "") + entry.relative_to(folder).as_posix(),
                    recursive=False)
    return path


def test_accept_stores_read_only_and_is_idempotent(tmp_path):
    data = tmp_path / "data"
    source = make(tmp_path / "s")
    first = submission.accept(source, data)
    stored = data / "submissions" / first.digest
    assert first.folder == stored and (stored / "pack" / "image.tar").is_file()
    assert not stored.stat().st_mode & stat.S_IWUSR
    assert not (stored / "submission.yaml").stat().st_mode & stat.S_IWUSR
    by_tarball = submission.accept(tarball_of(source, tmp_path / "s.tar.gz", gz=True, wrap="s"), data)
    assert by_tarball.digest == first.digest
    assert sorted(p.name for p in (data / "submissions").iterdir()) == [first.digest]   # no staging left


def test_an_invalid_submission_leaves_nothing_stored(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(SubmissionInvalid):
        submission.accept(make(tmp_path / "s", {"vendor": {"name": "acme"}}), data)
    assert list((data / "submissions").iterdir()) == []


def test_accept_refuses_links_and_special_files_in_a_folder(tmp_path):
    folder = make(tmp_path / "s")
    (folder / "key").symlink_to("/etc/shadow")
    import os
    os.mkfifo(folder / "pipe")
    with pytest.raises(SubmissionInvalid) as caught:
        submission.accept(folder, tmp_path / "data")
    text = str(caught.value)
    assert "key: is a link" in text.replace(" at key", "key") or "at key" in text
    assert "pipe" in text and "2 problems" in text


def hostile(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    return member


@pytest.mark.parametrize(("member", "expected"), [
    (info("/etc/cron.d/x"), "absolute path"),
    (info("../../escape"), "climbs out"),
    (info("pack/../../escape"), "climbs out"),
    (info("link", tarfile.SYMTYPE, "/etc/shadow"), "is a link"),
    (info("link", tarfile.SYMTYPE, "pack/chain.yaml"), "is a link"),
    (info("hard", tarfile.LNKTYPE, "/etc/passwd"), "is a link"),
    (info("dev", tarfile.CHRTYPE), "device"),
    (info("fifo", tarfile.FIFOTYPE), "device"),
])
def test_hostile_tarball_members_are_refused_and_nothing_is_written(tmp_path, member, expected):
    tarball = hostile(tmp_path / "bad.tar", (info("submission.yaml"), b"vendor: {name: acme}\n"),
                      (member, b"x"))
    with pytest.raises(SubmissionInvalid) as caught:
        submission.accept(tarball, tmp_path / "data")
    assert expected in str(caught.value) and "bad.tar" in str(caught.value)
    assert list((tmp_path / "data" / "submissions").iterdir()) == []
    assert not (tmp_path / "escape").exists()


def test_every_hostile_member_is_listed(tmp_path):
    tarball = hostile(tmp_path / "bad.tar", (info("/abs"), b"x"), (info("../up"), b"x"),
                      (info("l", tarfile.SYMTYPE, "/"), b""))
    with pytest.raises(SubmissionInvalid) as caught:
        submission.extract(tarball, tmp_path / "out")
    assert len(caught.value.problems) == 3


def test_size_and_count_caps(tmp_path):
    tarball = hostile(tmp_path / "big.tar", (info("a"), b"x" * 600), (info("b"), b"x" * 600))
    with pytest.raises(SubmissionInvalid, match="at most 1000 bytes"):
        submission.extract(tarball, tmp_path / "out", max_bytes=1000)
    with pytest.raises(SubmissionInvalid, match="at most 1 files"):
        submission.extract(tarball, tmp_path / "out2", max_files=1)


def test_not_a_tarball(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(SubmissionInvalid, match="readable .tar"):
        submission.accept(junk, tmp_path / "data")


def test_nothing_there(tmp_path):
    with pytest.raises(Exception, match="nothing is there"):
        submission.accept(tmp_path / "absent", tmp_path / "data")


def cli(*args: str, env: dict | None = None):
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=root, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_submit_queues_once_and_queue_lists_it(tmp_path):
    source, data = make(tmp_path / "s"), tmp_path / "data"
    first = cli("submit", str(source), "--data", str(data))
    assert first.returncode == 0, first.stderr
    assert "queued" in first.stdout and "acme, demo 1.0, profile quick" in first.stdout
    again = cli("submit", str(source), "--data", str(data))
    assert again.returncode == 0 and "already queued" in again.stdout
    listing = cli("queue", "--data", str(data))
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split() == ["id", "vendor", "chain", "profile", "state", "attempts", "submitted",
                              "started", "finished", "result"]
    assert row.split()[:7] == [submission.digest(source)[:12], "acme", "demo", "1.0", "quick", "queued", "0"]


def test_submit_of_an_invalid_tarball_names_the_vendors_files_and_exits_2(tmp_path):
    source = make(tmp_path / "s", {"vendor": {"name": "X"}, "pack": "pack", "profile": "slow"})
    tarball = tarball_of(source, tmp_path / "s.tar")
    result = cli("submit", str(tarball), "--data", str(tmp_path / "data"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "2 problems" in result.stderr
    assert f"{tarball}:submission.yaml at vendor.name" in result.stderr
    assert f"{tarball}:submission.yaml at profile" in result.stderr
    assert ".incoming" not in result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--vendor", "Acme"], "at --vendor: 2-39 characters"),
    (["--vendor", "acme", "--claims", "/nonexistent/claims.yaml"], "nothing is there"),
    (["--vendor", "acme", "--out-is-full"], "a new or empty folder"),
])
def test_bundle_input_errors_are_one_clear_message(tmp_path, args, expected):
    out = tmp_path / "out"
    if "--out-is-full" in args:
        args = [a for a in args if a != "--out-is-full"]
        out.mkdir()
        (out / "something").write_text("x")
    result = cli("bundle", "anvil", *args, "--out", str(out))
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_claims_beyond_the_profiles_ceiling_are_refused_at_submit(tmp_path):
    """A vendor cannot queue a load the worker would only refuse after waiting its turn."""
    from harness.certify.program import PROFILES
    from harness.submission import _claims_problem

    claims = tmp_path / "claims.yaml"
    claims.write_text(f"throughput: {PROFILES['quick'].max_rate + 1:g}\n")
    problem = _claims_problem(claims, "quick")
    assert problem is not None and problem.field == "throughput" and "ceiling" in problem.expected
    assert _claims_problem(claims, "full") is None
