"""Getting a chain pack's image into the local engine: build, load a tarball, or use a tag.

Builds run offline-capable: artifacts (npm packages, Go binaries) are fetched on
the host into a temporary build context, and the Dockerfile's BASE_IMAGE build
argument points at a local Debian base, imported from debootstrap when no
registry is reachable.

Every step that acts on the host re-checks the pack's rules (harness/packpolicy.py)
right before it acts: registry specs only, no pack-chosen environment beyond an
allow-list, no path or link out of the pack, no image name the pack does not own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from harness import packpolicy, paths
from harness.chainpack import ChainPack
from harness.errors import InfraError, InputError

BASE_CANDIDATES = ("debian:bookworm-slim", "bctest/base:bookworm")
OFFLINE_BASE = "bctest/base:bookworm"
PACK_HASH_LABEL = "bctest.pack.hash"

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def pack_hash(pack: ChainPack) -> str:
    """Digest of every file in the pack folder: an image is rebuilt when its pack changes.
    Links are hashed as links (their target text), never followed out of the pack."""
    entries = []
    for current, dirs, files in os.walk(pack.folder, followlinks=False):
        for name in dirs + files:
            entry = Path(current, name)
            if entry.is_symlink() or entry.is_file():
                entries.append(entry)
    digest = hashlib.sha256()
    for file in sorted(entries):
        digest.update(str(file.relative_to(pack.folder)).encode())
        if file.is_symlink():
            digest.update(os.readlink(file).encode())
            continue
        with open(file, "rb") as stream:   # in chunks: a pack may hold a large tarball
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_offline_base(client: docker.DockerClient, log: Log = _quiet) -> str:
    """debootstrap a minimal Debian bookworm and `docker import` it as bctest/base:bookworm."""
    if shutil.which("debootstrap") is None:
        raise InfraError("no base image: debian:bookworm-slim cannot be pulled and debootstrap is "
                         "not installed (apt-get install debootstrap), or set BCTEST_BASE_IMAGE")
    if os.geteuid() != 0:
        raise InfraError("building the offline base image needs root (debootstrap); run "
                         "`sudo bctest images base` once, or set BCTEST_BASE_IMAGE")
    mirror = os.environ.get("BCTEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    with tempfile.TemporaryDirectory(prefix="bctest-rootfs-") as rootfs:
        log(f"debootstrap --variant=minbase bookworm ({mirror})")
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror],
            capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise InfraError("debootstrap failed:\n" + "\n".join(tail))
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "-", OFFLINE_BASE], stdin=tar.stdout,
                                  capture_output=True, text=True)
        tar.wait()
        if imported.returncode != 0:
            raise InfraError(f"docker import failed: {imported.stderr.strip()}")
    log(f"imported {OFFLINE_BASE}")
    return OFFLINE_BASE


def base_image(client: docker.DockerClient, log: Log = _quiet) -> str:
    """The Debian base for chain images: BCTEST_BASE_IMAGE, a local one, a pull, or debootstrap."""
    explicit = os.environ.get("BCTEST_BASE_IMAGE")
    if explicit:
        return explicit
    for candidate in BASE_CANDIDATES:
        if _has_image(client, candidate):
            return candidate
    try:
        log("pulling debian:bookworm-slim")
        client.images.pull("debian", tag="bookworm-slim")
        return BASE_CANDIDATES[0]
    except docker.errors.APIError as exc:
        log(f"pull failed ({str(exc).splitlines()[0][:120]}); building an offline base")
    return build_offline_base(client, log)


def _fetch_npm(spec: str, dest: Path) -> None:
    # A registry tarball, scripts off: npm runs no lifecycle script of the package. The
    # environment is the test center's (its registry, proxy); the pack sets none of it.
    with tempfile.TemporaryDirectory(prefix="bctest-npm-") as tmp:
        result = subprocess.run(["npm", "pack", "--ignore-scripts", "--silent", spec], cwd=tmp,
                                capture_output=True, text=True,
                                env={**os.environ, "npm_config_ignore_scripts": "true"})
        if result.returncode != 0:
            raise InfraError(f"npm pack {spec} failed: {result.stderr.strip()[-500:]}")
        produced = list(Path(tmp).glob("*.tgz"))
        if len(produced) != 1:
            raise InfraError(f"npm pack {spec} produced {len(produced)} files, expected one")
        shutil.move(str(produced[0]), dest)


def _fetch_go(spec: str, dest: Path, env: dict[str, str], ldflags: str | None) -> None:
    # The host's Go settings (GOPROXY, GOPATH, GOCACHE, GOFLAGS: the test center's) plus
    # only the allow-listed keys of the pack (packpolicy.GO_ENV); run from an empty folder
    # so no go.mod/go.work around the harness takes part. `pkg@version` ignores replaces.
    allowed = {key: value for key, value in env.items() if key in packpolicy.GO_ENV}
    with tempfile.TemporaryDirectory(prefix="bctest-go-") as gobin, \
            tempfile.TemporaryDirectory(prefix="bctest-go-cwd-") as cwd:
        command = ["go", "install"]
        if ldflags:
            command.append(f"-ldflags={ldflags}")
        command.append(spec)
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                                env={**os.environ, **allowed, "GOBIN": gobin})
        if result.returncode != 0:
            raise InfraError(f"go install {spec} failed: {result.stderr.strip()[-800:]}")
        binaries = list(Path(gobin).iterdir())
        if len(binaries) != 1:
            raise InfraError(f"go install {spec} produced {len(binaries)} files, expected one")
        shutil.move(str(binaries[0]), dest)


def _go_source_tree(folder: Path, file: str, field: str) -> tuple[list[Path], str]:
    """The files of a go_source folder (bounded in count and bytes) and their digest."""
    files: list[Path] = []
    total = 0
    for current, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            entry = Path(current, name)
            files.append(entry)
            total += entry.lstat().st_size
            if len(files) > packpolicy.GO_SOURCE_MAX_FILES or total > packpolicy.GO_SOURCE_MAX_BYTES:
                raise InputError(file, f"{field}.go_source", f"{folder} holds more than "
                                 f"{packpolicy.GO_SOURCE_MAX_FILES} files or "
                                 f"{packpolicy.GO_SOURCE_MAX_BYTES >> 20} MiB")
    digest = hashlib.sha256()
    for entry in files:
        digest.update(str(entry.relative_to(folder)).encode() + b"\0")
        digest.update(os.readlink(entry).encode() if entry.is_symlink() else entry.read_bytes())
    return files, digest.hexdigest()


def build_go_source(folder: Path, dest: Path, env: dict[str, str], ldflags: str | None,
                    file: str, field: str) -> None:
    """Compile the Go main package at the root of a pack folder into `dest`.

    Compiling runs no code of the pack: cgo is off (no C compiler, no #cgo flags), the
    toolchain is the host's (GOTOOLCHAIN=local: go.mod cannot fetch another), no go.work
    (GOWORK=off), no VCS stamping (-buildvcs=false: git would read the pack's .git config),
    go.mod may not `replace` with a local path (host files outside the pack), go:generate
    never runs under `go build`, and it builds a copy, so it cannot write the pack.
    Modules come from the host's GOPROXY and are checked against go.sum."""
    packpolicy.check_tree(folder, folder, file)
    _go_source_tree(folder, file, field)
    if not (folder / "go.mod").is_file():
        raise InputError(file, f"{field}.go_source", f"{folder} has no go.mod")
    allowed = {key: value for key, value in env.items() if key in packpolicy.GO_ENV}
    go_env = {**os.environ, **allowed, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local",
              "GOWORK": "off", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    with tempfile.TemporaryDirectory(prefix="bctest-gosrc-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(folder, copy, symlinks=True)
        edit = subprocess.run(["go", "mod", "edit", "-json"], cwd=copy, capture_output=True,
                              text=True, env=go_env, timeout=60)
        if edit.returncode != 0:
            raise InputError(file, f"{field}.go_source", f"go.mod of {folder} does not parse: "
                             f"{edit.stderr.strip()[-300:]}")
        try:
            replaces = json.loads(edit.stdout).get("Replace")
        except (ValueError, AttributeError):
            raise InfraError(f"go mod edit -json of {folder} gave no JSON") from None
        packpolicy.check_go_mod(replaces, file, field)
        command = ["go", "build", "-trimpath", "-buildvcs=false", "-mod=readonly"]
        if ldflags:
            command.append(f"-ldflags={ldflags}")
        command += ["-o", str(Path(tmp) / "out"), "."]
        try:
            result = subprocess.run(command, cwd=copy, capture_output=True, text=True,
                                    env=go_env, timeout=900)
        except subprocess.TimeoutExpired:
            raise InfraError(f"go build of {folder} took more than 900 s") from None
        if result.returncode != 0:
            raise InfraError(f"go build of {folder} failed: {result.stderr.strip()[-800:]}")
        shutil.move(str(Path(tmp) / "out"), dest)


def fetch_artifact(artifact: dict, log: Log = _quiet, file: str = "chain pack",
                   field: str = "image.build.artifacts", pack_folder: Path | None = None) -> Path:
    """Fetch one artifact into the cache (keyed by its spec) and return the cached file.
    Refuses (InputError) an artifact the pack rules forbid before anything runs.
    A go_source artifact (a folder of `pack_folder`) is keyed by its files too."""
    packpolicy.check_artifact(artifact, file, field)
    spec = json.dumps(artifact, sort_keys=True)
    source: Path | None = None
    if "go_source" in artifact:
        if pack_folder is None:
            raise InputError(file, f"{field}.go_source", "a go_source artifact needs its pack folder")
        source = packpolicy.resolve_inside(pack_folder, artifact["go_source"], file,
                                           f"{field}.go_source")
        if not source.is_dir():
            raise InputError(file, f"{field}.go_source", f"{source} is not a folder of the pack")
        spec += _go_source_tree(source, file, field)[1]
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    cached = paths.cache_dir() / "artifacts" / key / Path(artifact["dest"]).name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(cached.suffix + ".partial")
    if source is not None:
        if shutil.which("go") is None:
            raise InfraError(f"artifact {artifact['go_source']} needs Go, which is not installed")
        log(f"go build {artifact['go_source']} (CGO_ENABLED=0)")
        build_go_source(source, partial, artifact.get("env", {}), artifact.get("ldflags"), file,
                        field)
    elif "npm" in artifact:
        if shutil.which("npm") is None:
            raise InfraError(f"artifact {artifact['npm']} needs npm, which is not installed")
        log(f"npm pack {artifact['npm']}")
        _fetch_npm(artifact["npm"], partial)
    else:
        if shutil.which("go") is None:
            raise InfraError(f"artifact {artifact['go']} needs Go, which is not installed")
        log(f"go install {artifact['go']}")
        _fetch_go(artifact["go"], partial, artifact.get("env", {}), artifact.get("ldflags"))
    partial.rename(cached)
    return cached


def build(client: docker.DockerClient, pack: ChainPack, log: Log = _quiet) -> str:
    """Build the pack's image in a temporary context holding its artifacts; return the image id."""
    spec = pack.build or {}
    file = str(pack.manifest)
    packpolicy.check_tag(pack.image_tag, pack.name, pack.reference, creates=True, file=file)
    source = packpolicy.resolve_inside(pack.folder, spec.get("context", "."), file, "image.build.context")
    dockerfile = spec.get("dockerfile", "Dockerfile")
    packpolicy.resolve_inside(source, dockerfile, file, "image.build.dockerfile")
    packpolicy.check_tree(source, pack.folder, file)   # again: the folder may have changed
    base = base_image(client, log)
    with tempfile.TemporaryDirectory(prefix=f"bctest-build-{pack.name}-") as tmp:
        context = Path(tmp) / "context"
        # Links are copied as links (checked above to stay inside the pack), never followed.
        shutil.copytree(source, context, symlinks=True)
        for index, artifact in enumerate(spec.get("artifacts", [])):
            field = f"image.build.artifacts[{index}]"
            fetched = fetch_artifact(artifact, log, file, field, pack.folder)
            # Resolved in the copy: a link in the context cannot carry the write elsewhere.
            target = packpolicy.resolve_inside(context, artifact["dest"], file, f"{field}.dest")
            if target.is_dir():
                raise InputError(file, f"{field}.dest", f"{artifact['dest']!r} is a folder in the "
                                 "build context, expected a file path")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(fetched, target)
        log(f"docker build {pack.image_tag} (BASE_IMAGE={base})")
        buildargs = {**spec.get("args", {}), "BASE_IMAGE": base}   # the base is the center's
        packpolicy.check_build_images(context / dockerfile, buildargs,
                                      lambda ref: _has_image(client, ref), file)
        labels = {PACK_HASH_LABEL: pack_hash(pack), "bctest.pack": pack.name}
        lines: list[str] = []
        try:
            stream = client.api.build(path=str(context), dockerfile=dockerfile,
                                      tag=pack.image_tag, buildargs=buildargs, labels=labels,
                                      rm=True, forcerm=True, decode=True)
            for chunk in stream:
                if "stream" in chunk:
                    lines.extend(chunk["stream"].rstrip("\n").splitlines())
                if "error" in chunk:
                    tail = "\n".join(lines[-15:])
                    raise InfraError(f"building {pack.image_tag} from {pack.folder} failed: "
                                     f"{chunk['error'].strip()}\n{tail}")
        except docker.errors.APIError as exc:
            raise InfraError(f"building {pack.image_tag} failed: {exc}") from None
    return client.images.get(pack.image_tag).id


def load_tarball(client: docker.DockerClient, pack: ChainPack, log: Log = _quiet) -> str:
    """`docker load` the pack's tarball once its naming files say it holds one image, named
    the pack's own tag: a tarball cannot name (and so replace) any other image."""
    file = str(pack.manifest)
    packpolicy.check_tag(pack.image_tag, pack.name, pack.reference, creates=True, file=file)
    tarball = pack.tarball
    if tarball is None or not packpolicy.inside(tarball, pack.folder):
        raise InputError(file, "image.tarball", f"{tarball} is not inside the pack folder {pack.folder}")
    packpolicy.check_tarball(tarball, pack.image_tag, file)
    log(f"docker load {tarball}")
    try:
        with open(tarball, "rb") as stream:
            loaded = client.images.load(stream)
    except docker.errors.APIError as exc:
        raise InfraError(f"docker load {pack.tarball} failed: {exc}") from None
    if not _has_image(client, pack.image_tag):
        tags = [t for image in loaded for t in image.tags]
        raise InfraError(f"{pack.tarball} holds {', '.join(tags) or 'untagged images'}, "
                         f"not {pack.image_tag} (image.tag in {pack.manifest})")
    return client.images.get(pack.image_tag).id


def ensure(client: docker.DockerClient, pack: ChainPack, rebuild: bool = False,
           log: Log = _quiet) -> str:
    """Make the pack's image present locally and current; return its image id."""
    if pack.tarball is not None:
        if rebuild or not _has_image(client, pack.image_tag):
            return load_tarball(client, pack, log)
        return client.images.get(pack.image_tag).id
    if pack.build is not None:
        if not rebuild and _has_image(client, pack.image_tag):
            image = client.images.get(pack.image_tag)
            if (image.labels or {}).get(PACK_HASH_LABEL) == pack_hash(pack):
                return image.id
        return build(client, pack, log)
    if _has_image(client, pack.image_tag):
        return client.images.get(pack.image_tag).id
    if not packpolicy.may_pull(pack.image_tag):
        raise InputError(str(pack.manifest), "image.tag", f"image {pack.image_tag} is not present, "
                         "and bctest pulls nothing into the test center's namespaces (Docker Hub "
                         f"official images, {packpolicy.REFERENCE_NAMESPACE}/, "
                         f"{packpolicy.VENDOR_NAMESPACE}/): build or load it, or name your registry")
    try:
        log(f"docker pull {pack.image_tag}")
        return client.images.pull(pack.image_tag).id
    except docker.errors.APIError as exc:
        raise InfraError(f"image {pack.image_tag} is not present and cannot be pulled: "
                         f"{str(exc).splitlines()[0]}") from None


SOURCE_LABEL = "bctest.source"   # the harness image's code: source_digest() of what it was built from


def source_digest(package: Path | None = None) -> str:
    """A digest of the harness package's files (Python and schemas): the Swarm agent must run
    the same code as the harness that talks to it, whatever the image's version tag says."""
    root = package or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json")
                       and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def build_harness(client: docker.DockerClient, source: Path, tag: str, log: Log = _quiet) -> str:
    """Build the harness's own image from the checkout at `source` (its top-level Dockerfile).

    Wheels for the harness and its dependencies are built on the host first, so the build
    installs with --no-index: no registry access or CA setup is needed inside the build.
    """
    base = base_image(client, log)
    with tempfile.TemporaryDirectory(prefix="bctest-harness-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(source, context, ignore=shutil.ignore_patterns(
            ".git", "runs", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", ".wheels"))
        wheels = context / ".wheels"
        log("pip wheel (harness and dependencies)")
        result = subprocess.run(
            ["python3", "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(context),
             "setuptools", "wheel"], capture_output=True, text=True)
        if result.returncode != 0:
            raise InfraError(f"pip wheel failed: {result.stderr.strip()[-800:]}")
        log(f"docker build {tag} (BASE_IMAGE={base})")
        args = {"BASE_IMAGE": base, "PIP_ARGS": "--no-index --find-links /opt/bctest/.wheels"}
        lines: list[str] = []
        try:
            for chunk in client.api.build(path=str(context), tag=tag, buildargs=args, rm=True,
                                          forcerm=True, decode=True,
                                          labels={SOURCE_LABEL: source_digest(source / "harness")}):
                lines.extend(chunk.get("stream", "").rstrip("\n").splitlines())
                if "error" in chunk:
                    raise InfraError(f"building {tag} failed: {chunk['error'].strip()}\n"
                                     + "\n".join(lines[-15:]))
        except docker.errors.APIError as exc:
            raise InfraError(f"building {tag} failed: {exc}") from None
    return client.images.get(tag).id
