"""A hostile chain pack must not run code on, read from or write to the test host, nor
overwrite images it does not own (issue 10, "The pack reaches the host", items 1-3).

Every attack is refused with exit 2 by `bctest validate` (and by `bctest images build`,
which would act on it), the message naming the pack file and the field or link, and
nothing the pack asked for happened (a marker file the attack would create stays absent).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import chainpack, packpolicy
from harness.errors import InputError
from harness.runtime import images

from .packs import ROOT, bctest, go_build, manifest, save_tar, write_pack

COMETBFT = "github.com/cometbft/cometbft/cmd/cometbft@v0.38.26"   # in the module cache after setup


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


def evil_script(tmp_path: Path) -> tuple[Path, Path]:
    """A program that, if the host ever runs it, leaves a marker (and stops the build)."""
    marker = tmp_path / "pwned"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    return script, marker


# ------------------------------------------------------------ 1. artifacts run nothing on the host


def test_goflags_toolexec_is_refused_and_nothing_runs(tmp_path):
    script, marker = evil_script(tmp_path)
    pack = write_pack(tmp_path / "pack", go_build(
        {"go": COMETBFT, "env": {"GOFLAGS": f"-toolexec={script}"}, "dest": "cometbft"}))
    refused(bctest("validate", str(pack)), str(pack / "chain.yaml"),
            "image.build.artifacts[0].env.GOFLAGS")
    # `images build` is what fetched the artifact: it refuses before `go install` runs.
    refused(bctest("images", "build", str(pack), timeout=600), "GOFLAGS")
    assert not marker.exists(), "the pack's program ran on the host"


@pytest.mark.parametrize("env", [
    {"GOFLAGS": "-toolexec=/bin/true"},
    {"PATH": "/tmp/evil-bin"},
    {"GOPROXY": "file:///tmp/evil-proxy"},
    {"CC": "/tmp/evil-cc"},
    {"GOTOOLCHAIN": "go1.99.0"},
    {"CGO_ENABLED": "1 -toolexec=/bin/true"},
    {"GOOS": "linux/../x"},
], ids=lambda env: next(iter(env)))
def test_go_environment_is_an_allow_list(tmp_path, env):
    pack = write_pack(tmp_path / "pack", go_build({"go": COMETBFT, "env": env, "dest": "bin"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].env")


def test_hostile_go_artifact_is_refused_by_the_fetcher_itself(tmp_path):
    """The check sits next to the act: a caller that skips chainpack.load is refused too."""
    script, marker = evil_script(tmp_path)
    with pytest.raises(InputError, match="GOFLAGS"):
        images.fetch_artifact({"go": COMETBFT, "env": {"GOFLAGS": f"-toolexec={script}"},
                               "dest": "cometbft"})
    with pytest.raises(InputError, match="ldflags"):
        images.fetch_artifact({"go": COMETBFT, "ldflags": f"-linkmode=external -extld={script}",
                               "dest": "cometbft"})
    assert not marker.exists()


@pytest.mark.parametrize("ldflags", [
    "-linkmode=external -extld=/tmp/evil.sh",
    "-extldflags=-fplugin=/tmp/evil.so",
    "-o /etc/cron.d/x",
    "-cpuprofile=/tmp/x",
    "-L /root",
    "-importcfg=/etc/shadow",
    "-X 'main.v=a b'",
    "-toolexec=/bin/true",
])
def test_linker_flags_are_an_allow_list(tmp_path, ldflags):
    pack = write_pack(tmp_path / "pack", go_build({"go": COMETBFT, "ldflags": ldflags, "dest": "bin"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].ldflags", "not allowed")


def test_reference_linker_flags_stay_allowed(tmp_path):
    pack = write_pack(tmp_path / "pack", go_build(
        {"go": COMETBFT, "env": {"CGO_ENABLED": "0", "GOARCH": "amd64"},
         "ldflags": "-checklinkname=0 -s -w -X main.version=1.2.3", "dest": "bin"}))
    assert chainpack.load(pack).build["artifacts"][0]["dest"] == "bin"


@pytest.mark.parametrize("spec", [
    "./cmd/evil@v1.0.0", "/srv/evil@v1.0.0", "-toolexec=/bin/true", "github.com/a/b@master",
    "github.com/a/b@latest", "github.com/a/../b@v1.0.0", "github.com/a/b", "localhost/a@v1.0.0",
])
def test_go_specs_are_module_paths_at_exact_versions(tmp_path, spec):
    pack = write_pack(tmp_path / "pack", go_build({"go": spec, "dest": "bin"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].go")


def test_npm_git_file_spec_is_refused_and_its_prepare_script_never_runs(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the hostile git repository cannot be made")
    marker = tmp_path / "pwned"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "package.json").write_text(json.dumps(
        {"name": "evil", "version": "1.0.0", "scripts": {"prepare": f"touch {marker}"}}))
    git = ["git", "-C", str(repo), "-c", "user.name=v", "-c", "user.email=v@v"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "evil"], check=True)
    spec = f"git+file://{repo}"
    pack = write_pack(tmp_path / "pack", go_build({"npm": spec, "dest": "evil.tgz"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].npm", "exact version")
    refused(bctest("images", "build", str(pack), timeout=600), "image.build.artifacts[0].npm")
    with pytest.raises(InputError):
        images.fetch_artifact({"npm": spec, "dest": "evil.tgz"})
    assert not marker.exists(), "the pack's npm script ran on the host"


@pytest.mark.parametrize("spec", [
    "file:../evil", "https://evil.example/evil-1.0.0.tgz", "./evil", "/srv/evil", "evil-1.0.0.tgz",
    "evil@latest", "evil@^1.0.0", "evil", "npm:other@1.0.0", "github:vendor/evil",
    "evil@1.0.0 --foreground-scripts", "--ignore-scripts=false",
])
def test_npm_specs_are_registry_packages_at_exact_versions(tmp_path, spec):
    pack = write_pack(tmp_path / "pack", go_build({"npm": spec, "dest": "evil.tgz"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].npm")


def test_npm_artifacts_take_no_environment(tmp_path):
    pack = write_pack(tmp_path / "pack", go_build(
        {"npm": "@foundry-rs/anvil-linux-amd64@1.7.1", "env": {"GOOS": "linux"}, "dest": "a.tgz"}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].env")


# ------------------------------------------------------------ 2. paths stay inside the pack


@pytest.mark.parametrize("dest", ["../../etc/cron.d/x", "/etc/cron.d/x", "a/../../x", "..", "C:x"])
def test_artifact_dest_stays_in_the_build_context(tmp_path, dest):
    pack = write_pack(tmp_path / "pack", go_build({"go": COMETBFT, "dest": dest}))
    refused(bctest("validate", str(pack)), "image.build.artifacts[0].dest")


@pytest.mark.parametrize("build, field", [
    ({"context": "../../.."}, "image.build.context"),
    ({"context": "/"}, "image.build.context"),
    ({"dockerfile": "../Dockerfile.outside"}, "image.build.dockerfile"),
    ({"dockerfile": "/etc/passwd"}, "image.build.dockerfile"),
])
def test_build_paths_stay_inside_the_pack(tmp_path, build, field):
    (tmp_path / "Dockerfile.outside").write_text("FROM scratch\n")
    pack = write_pack(tmp_path / "a" / "pack", {"tag": "bctest-vendor/evil:1", "build": build})
    (tmp_path / "a" / "Dockerfile.outside").write_text("FROM scratch\n")
    refused(bctest("validate", str(pack)), field)


@pytest.mark.parametrize("tarball", ["../image.tar", "/etc/passwd"])
def test_tarball_path_stays_inside_the_pack(tmp_path, tarball):
    save_tar(tmp_path / "image.tar", {"manifest.json": manifest("bctest-vendor/evil:1")})
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "tarball": tarball},
                      dockerfile=False)
    refused(bctest("validate", str(pack)), "image.tarball")


def fake_signing_key(tmp_path: Path) -> Path:
    key = tmp_path / "center" / "signing.key"
    key.parent.mkdir()
    key.write_text("-----BEGIN PRIVATE KEY----- the test center's -----END PRIVATE KEY-----\n")
    return key


@pytest.mark.parametrize("kind", ["file", "folder", "absolute-inside"])
def test_a_link_out_of_the_pack_is_refused_naming_it(tmp_path, kind):
    key = fake_signing_key(tmp_path)
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "build": {}})
    link = pack / "files" / "key.pem"
    link.parent.mkdir()
    if kind == "file":
        link.symlink_to(os.path.relpath(key, link.parent))
    elif kind == "folder":
        link.symlink_to("/")
    else:   # absolute links point elsewhere once the context is copied
        link.symlink_to(pack / "Dockerfile")
    refused(bctest("validate", str(pack)), str(link), "link")


def test_links_inside_the_pack_are_copied_as_links(tmp_path):
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "build": {}})
    (pack / "entry.sh").write_text("#!/bin/sh\n")
    (pack / "start.sh").symlink_to("entry.sh")
    assert chainpack.load(pack).name == "evil"


def test_a_link_planted_after_validation_is_refused_before_the_build(tmp_path):
    """The copy of the build context checks again: the engine is never asked (client None)."""
    key = fake_signing_key(tmp_path)
    pack_dir = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "build": {}})
    pack = chainpack.load(pack_dir)
    (pack_dir / "key.pem").symlink_to(key)
    with pytest.raises(InputError, match="key.pem"):
        images.build(None, pack)   # type: ignore[arg-type]


def test_an_artifact_dest_through_a_link_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    pack = write_pack(tmp_path / "pack", go_build({"go": COMETBFT, "dest": "out/cometbft"}))
    (pack / "out").symlink_to("../outside")
    refused(bctest("validate", str(pack)), "out")


# ------------------------------------------------------------ 3. image identity


@pytest.mark.parametrize("tag", [
    "debian:bookworm-slim", "docker.io/library/debian:bookworm-slim", "bctest/base:bookworm",
    "bctest/anvil:1.7.1", "bctest/geth-clique:1.13.15", "bctest/harness:0.2.0",
    "bctest-vendor/someone-else:1", "localhost:5000/bctest-vendor/evil:1", "bctest-vendor/evil",
    "bctest-vendor/evil@sha256:" + "0" * 64,
])
def test_a_vendor_pack_builds_only_into_its_own_namespace(tmp_path, tag):
    pack = write_pack(tmp_path / "pack", {"tag": tag, "build": {}})
    refused(bctest("validate", str(pack)), "image.tag")


def test_a_vendor_pack_loads_only_into_its_own_namespace(tmp_path):
    pack = write_pack(tmp_path / "pack", {"tag": "debian:bookworm-slim", "tarball": "image.tar"},
                      dockerfile=False)
    save_tar(pack / "image.tar", {"manifest.json": manifest("debian:bookworm-slim")})
    refused(bctest("validate", str(pack)), "image.tag", "bctest-vendor/evil")


@pytest.mark.parametrize("name", ["harness", "base"])
def test_a_reference_pack_cannot_be_named_after_the_center_s_images(tmp_path, monkeypatch, name):
    monkeypatch.setenv("BCTEST_HOME", str(tmp_path))
    pack = write_pack(tmp_path / "chains" / name, {"tag": f"bctest/{name}:1", "build": {}}, name=name)
    with pytest.raises(InputError, match="test-center image"):
        chainpack.load(pack)


def test_reference_packs_are_recognised_by_their_folder(tmp_path):
    for name in ("anvil", "cometbft", "geth-clique", "litecoin"):
        assert chainpack.load(ROOT / "chains" / name).reference
    copied = tmp_path / "anvil"
    shutil.copytree(ROOT / "chains" / "anvil", copied)
    (tmp_path / "linked").symlink_to(ROOT / "chains" / "anvil")
    assert chainpack.load(tmp_path / "linked").reference   # the link resolves into chains/
    with pytest.raises(InputError, match="bctest-vendor/anvil"):   # a copy is a vendor's pack
        chainpack.load(copied)


TARBALLS = {
    "foreign-tag": {"manifest.json": manifest("debian:bookworm-slim")},
    "extra-tag": {"manifest.json": manifest("bctest-vendor/evil:1", "bctest/anvil:1.7.1")},
    "two-images": {"manifest.json": manifest("bctest-vendor/evil:1") + manifest("bctest/base:bookworm")},
    "untagged": {"manifest.json": manifest()},
    "case-twin-key": {"manifest.json": b'[{"Config": "c.json", "RepoTags": ["bctest-vendor/evil:1"], '
                                       b'"repotags": ["debian:bookworm-slim"], "Layers": []}]'},
    "repositories": {"manifest.json": manifest("bctest-vendor/evil:1"),
                     "repositories": {"debian": {"bookworm-slim": "0" * 64}}},
    "oci-index": {"manifest.json": manifest("bctest-vendor/evil:1"),
                  "index.json": {"schemaVersion": 2, "manifests": [{"annotations": {
                      "io.containerd.image.name": "docker.io/library/debian:bookworm-slim"}}]}},
    "no-manifest": {"repositories": {"bctest-vendor/evil": {"1": "0" * 64}}},
    "not-json": {"manifest.json": b"[{"},
}


@pytest.mark.parametrize("case", sorted(TARBALLS))
def test_a_tarball_naming_other_images_is_refused_before_docker_load(tmp_path, case):
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "tarball": "image.tar"},
                      dockerfile=False)
    save_tar(pack / "image.tar", TARBALLS[case])
    refused(bctest("validate", str(pack)), "image.tarball")


def test_a_duplicated_manifest_member_is_refused(tmp_path):
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "tarball": "image.tar"},
                      dockerfile=False)
    save_tar(pack / "image.tar", {"manifest.json": manifest("bctest-vendor/evil:1"),
                                  "./manifest.json": manifest("debian:bookworm-slim")})
    refused(bctest("validate", str(pack)), "image.tarball", "twice")


def test_a_tarball_swapped_after_validation_is_refused_before_the_engine(tmp_path):
    pack_dir = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "tarball": "image.tar"},
                          dockerfile=False)
    save_tar(pack_dir / "image.tar", {"manifest.json": manifest("bctest-vendor/evil:1")})
    pack = chainpack.load(pack_dir)
    save_tar(pack_dir / "image.tar", {"manifest.json": manifest("bctest-vendor/evil:1", "debian:x")})
    with pytest.raises(InputError, match="debian:x"):
        images.load_tarball(None, pack)   # type: ignore[arg-type]


class _NoPullClient:
    """The engine as far as ensure() sees it for an absent image: any pull is recorded."""

    def __init__(self):
        self.pulled: list[str] = []
        self.images = self

    def get(self, ref):
        import docker.errors
        raise docker.errors.ImageNotFound(ref)

    def pull(self, ref, tag=None):
        self.pulled.append(ref)
        raise AssertionError(f"pulled {ref}")


@pytest.mark.parametrize("tag", ["bctest/anvil:9.9.9", "debian:trixie", "bctest-vendor/evil:1",
                                 "docker.io/bctest/harness:9"])
def test_no_pull_into_the_center_s_namespaces(tmp_path, tag):
    """A pack that only names an image may use one that is present (nothing is written),
    but bctest pulls none into the namespaces it owns."""
    pack = chainpack.load(write_pack(tmp_path / "pack", {"tag": tag}, dockerfile=False))
    client = _NoPullClient()
    with pytest.raises(InputError, match="pulls nothing"):
        images.ensure(client, pack)   # type: ignore[arg-type]
    assert client.pulled == []


def test_dockerfile_images_are_read_as_the_builder_reads_them():
    text = ("# escape=\\\nARG TOOLS=golang:1.22\nARG BASE_IMAGE=debian:bookworm-slim\n"
            "FROM --platform=linux/amd64 ${TOOLS} AS build\nFROM ${BASE_IMAGE}\n"
            "COPY --from=build /a /a\nCOPY --from=bctest/harness:9 /b /b\n"
            "FROM ${MISSING:-bctest-vendor/other:1} \\\n  AS last\nFROM last\nFROM scratch\n")
    assert packpolicy.dockerfile_images(text, {"BASE_IMAGE": "bctest/base:bookworm"}) == [
        "golang:1.22", "bctest/base:bookworm", "bctest/harness:9", "bctest-vendor/other:1"]


@pytest.mark.parametrize("source", ["FROM bctest/harness:no-such-version",
                                    "FROM ${BASE_IMAGE}\nCOPY --from=bctest/anvil:0.0.0 /x /x",
                                    "FROM bctest-vendor/someone-else:1", "FROM $UNSET"])
def test_a_build_never_pulls_into_the_center_s_namespaces(tmp_path, source):
    pack = chainpack.load(write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:1", "build": {}}))
    (pack.folder / "Dockerfile").write_text(f"ARG BASE_IMAGE=debian:bookworm-slim\n{source}\n")
    with pytest.raises(InputError, match="image.build.dockerfile"):
        packpolicy.check_build_images(pack.folder / "Dockerfile", {"BASE_IMAGE": "bctest/base:bookworm"},
                                      lambda ref: ref == "bctest/base:bookworm", str(pack.manifest))


# ------------------------------------------------------------ 3. against the real engine


@pytest.fixture(scope="module")
def docker_client():
    from harness.errors import InfraError
    from harness.runtime.docker import connect

    try:
        return connect()
    except InfraError as exc:
        if os.environ.get("BCTEST_REQUIRE_DOCKER") == "1":
            pytest.fail(f"BCTEST_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(f"no Docker Engine: {exc}")


def test_the_engine_builds_nothing_that_would_pull_a_center_name(docker_client, tmp_path):
    """FROM an absent bctest/ image: refused before the engine pulls (before the fix the
    engine tried Docker Hub's `bctest` user, whoever owns it)."""
    pack = write_pack(tmp_path / "pack", {"tag": "bctest-vendor/evil:from", "build": {}})
    (pack / "Dockerfile").write_text("FROM bctest/harness:adversarial-absent\n")
    refused(bctest("images", "build", str(pack)), "image.build.dockerfile",
            "bctest/harness:adversarial-absent")


def test_docker_load_never_runs_for_a_tarball_with_a_foreign_tag(docker_client, tmp_path):
    """A real `docker save` of two names, the pack's own and a victim's: the victim name
    must not appear in the engine (before the fix `docker load` created or replaced it)."""
    import docker.errors

    own, victim = "bctest-vendor/evil:adversarial", "bctest-adversarial/victim:1"
    empty = tmp_path / "empty.tar"
    save_tar(empty, {"marker": b"an image of one file\n"})
    imported = subprocess.run(["docker", "import", str(empty), own], capture_output=True, text=True)
    if imported.returncode != 0:
        pytest.skip(f"docker import failed: {imported.stderr.strip()}")
    pack = write_pack(tmp_path / "pack", {"tag": own, "tarball": "image.tar"}, dockerfile=False)
    try:
        docker_client.images.get(own).tag(victim)
        saved = subprocess.run(["docker", "save", "-o", str(pack / "image.tar"), own, victim],
                               capture_output=True, text=True)
        assert saved.returncode == 0, saved.stderr
        for ref in (own, victim):
            docker_client.images.remove(ref, force=True)
        refused(bctest("images", "build", str(pack)), "image.tarball", victim)
        for ref in (own, victim):
            with pytest.raises(docker.errors.ImageNotFound):
                docker_client.images.get(ref)
    finally:
        for ref in (own, victim):
            try:
                docker_client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
