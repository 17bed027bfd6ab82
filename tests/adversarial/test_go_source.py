"""A pack's own Go source (a `go_source` artifact, e.g. the cometbft pack's ABCI app) is
compiled on the host: compiling must run none of the pack's code or programs, read nothing
outside the pack, and write nothing into it (issue 13 §3; docs/vendor-contract.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import InfraError, InputError
from harness.runtime import images

from .packs import bctest, go_build, write_pack

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed (the "
                                "go_source artifact is compiled with the host's go)")

MAIN = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("app") }\n'


def module(folder: Path, extra_mod: str = "", files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "go.mod").write_text(f"module example.com/app\n\ngo 1.21\n{extra_mod}")
    (folder / "main.go").write_text(MAIN)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def evil(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    script.chmod(0o755)
    return script, marker


def test_a_plain_module_builds_and_runs(tmp_path):
    source = module(tmp_path / "pack" / "app")
    before = sorted(p.name for p in source.iterdir())
    images.build_go_source(source, tmp_path / "app.bin", {"GOARCH": "amd64"}, "-s -w", "chain.yaml",
                           "image.build.artifacts[0]")
    assert subprocess.run([tmp_path / "app.bin"], capture_output=True, text=True).stdout == "app\n"
    assert sorted(p.name for p in source.iterdir()) == before, "the build wrote into the pack"


def test_cgo_generate_and_vcs_hooks_never_run(tmp_path):
    """cgo is off (no C compiler, its flags never reach a linker), go:generate is not run by
    go build, and VCS stamping is off (git would run the pack's core.fsmonitor)."""
    script, marker = evil(tmp_path)
    source = module(tmp_path / "pack" / "app", files={
        "gen.go": f"package main\n\n//go:generate {script}\n",
        "c.go": f'package main\n\n// #cgo LDFLAGS: -fuse-ld={script}\nimport "C"\n',
    })
    if shutil.which("git") is not None:   # a real repository whose status runs the script
        git = ["git", "-C", str(source), "-c", "user.name=v", "-c", "user.email=v@v"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "evil"], check=True)
        subprocess.run([*git, "config", "core.fsmonitor", str(script)], check=True)
    images.build_go_source(source, tmp_path / "app.bin", {}, None, "chain.yaml", "artifacts[0]")
    assert not marker.exists(), "the pack's program ran on the host"


def test_a_local_replace_is_refused_before_compiling(tmp_path):
    outside = module(tmp_path / "outside")   # host files outside the pack
    (outside / "go.mod").write_text("module example.com/secret\n\ngo 1.21\n")
    source = module(tmp_path / "pack" / "app", "require example.com/secret v0.0.0\n"
                    f"replace example.com/secret => {outside}\n")
    with pytest.raises(InputError, match="local path"):
        images.build_go_source(source, tmp_path / "app.bin", {}, None, "chain.yaml", "artifacts[0]")
    relative = module(tmp_path / "pack2" / "app", "require example.com/secret v0.0.0\n"
                      "replace example.com/secret => ../../outside\n")
    with pytest.raises(InputError, match="local path"):
        images.build_go_source(relative, tmp_path / "app.bin", {}, None, "chain.yaml", "artifacts[0]")
    assert not (tmp_path / "app.bin").exists()


def test_no_other_toolchain_is_fetched(tmp_path):
    source = module(tmp_path / "pack" / "app")
    (source / "go.mod").write_text("module example.com/app\n\ngo 1.99.0\n")
    with pytest.raises(InfraError, match="go build"):
        images.build_go_source(source, tmp_path / "app.bin", {}, None, "chain.yaml", "artifacts[0]")


@pytest.mark.parametrize("artifact, field", [
    ({"go_source": "../outside", "dest": "app"}, "go_source"),
    ({"go_source": "/srv/app", "dest": "app"}, "go_source"),
    ({"go_source": "app", "env": {"CGO_ENABLED": "1"}, "dest": "app"}, "env.CGO_ENABLED"),
    ({"go_source": "app", "env": {"GOFLAGS": "-toolexec=/bin/true"}, "dest": "app"}, "env.GOFLAGS"),
    ({"go_source": "app", "ldflags": "-linkmode=external -extld=/tmp/x", "dest": "app"}, "ldflags"),
])
def test_validate_refuses_hostile_go_source_fields(tmp_path, artifact, field):
    pack = write_pack(tmp_path / "pack", go_build(artifact))
    module(pack / "app")
    result = bctest("validate", str(pack))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"image.build.artifacts[0].{field}" in result.stderr, result.stderr


def test_a_link_out_of_the_pack_is_refused(tmp_path):
    source = module(tmp_path / "pack" / "app")
    (source / "key.go").symlink_to("/etc/hostname")
    with pytest.raises(InputError, match="leaves the pack"):
        images.build_go_source(source, tmp_path / "app.bin", {}, None, "chain.yaml", "artifacts[0]")
