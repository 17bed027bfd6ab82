"""What a chain pack may ask of the test host (docs/vendor-contract.md, "What a pack may do").

A vendor's pack is hostile input. Fetching artifacts runs `npm` and `go` on the host,
building copies the pack's files, loading a tarball names images in the host's engine:
each rule here keeps one of those from running vendor code on the host, reading or
writing outside the pack folder, or overwriting an image the pack does not own.
chainpack.load() applies them (so `bctest validate` refuses), and runtime/images.py
applies them again right before it acts (the check sits next to the act).
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Any

from harness.errors import InputError

# npm: a registry package at an exact version: never git+, file:, URLs, paths, tarballs,
# dist-tags, ranges or aliases, which npm resolves (and may run scripts for) on the host.
_SEMVER = r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
NPM_SPEC = re.compile(r"(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]{0,213}@" + _SEMVER)
# go: module-path/package@vX.Y.Z: the first element is a domain, no element starts with
# a dot (no `..`), nothing starts with `-` (no flags), an exact (pseudo-)version.
_GO_ELEMENT = r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]{0,99}"
GO_SPEC = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+(/" + _GO_ELEMENT + r")+@v" + _SEMVER)
# The only variables a pack may set for `go install`, with the values each may take.
# Everything else (GOFLAGS, PATH, GOPROXY, CC, ...) would let the pack run host programs.
GO_ENV = {
    "CGO_ENABLED": re.compile(r"[01]"),
    "GOOS": re.compile(r"[a-z0-9]{1,16}"),
    "GOARCH": re.compile(r"[a-z0-9]{1,16}"),
    "GOAMD64": re.compile(r"v[1-4]"),
    "GOARM": re.compile(r"[5-7](,(softfloat|hardfloat))?"),
}
# Linker flags that only shape the binary; -extld, -extldflags, -linkmode, -o, -L,
# -importcfg, -tmpdir and the profile flags would run or read or write host files.
_LDFLAGS = (re.compile(r"-{1,2}(s|w)(=(true|false))?"), re.compile(r"-{1,2}checklinkname=[01]"),
            re.compile(r"-{1,2}buildid=[A-Za-z0-9._/=-]*"))
_LDFLAG_X = re.compile(r"-{1,2}X")
_LDFLAG_X_VALUE = re.compile(r"[A-Za-z0-9_./~-]+\.[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:/+@~-]*")
LDFLAGS_ALLOWED = "-s, -w, -checklinkname=0|1, -buildid=ID, -X importpath.name=value"

# Docker reference grammar (distribution/reference), enough to tell names apart.
_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_DOCKER_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_REF = re.compile(r"((?P<domain>[A-Za-z0-9.-]+(:[0-9]+)?)/)?(?P<path>" + _COMPONENT
                       + r"(/" + _COMPONENT + r")*)(:(?P<tag>" + _DOCKER_TAG + r"))?")
VENDOR_NAMESPACE = "bctest-vendor"    # every image a vendor pack builds or loads lives here
REFERENCE_NAMESPACE = "bctest"        # the test center's own images: reference packs, base, harness
RESERVED_REFERENCE_NAMES = ("base", "harness")   # bctest/base, bctest/harness: never a pack's
# Repositories a pull must never write: Docker Hub's official images and the test center's.
_RESERVED_PULL = ("docker.io/library/", f"docker.io/{REFERENCE_NAMESPACE}/",
                  f"docker.io/{VENDOR_NAMESPACE}/")
_TARBALL_NAME_FILES = ("manifest.json", "repositories", "index.json")
_TARBALL_JSON_LIMIT = 1 << 20


def check_artifact(artifact: dict[str, Any], file: str, field: str) -> None:
    """An artifact is a registry spec the host may fetch without running the vendor's code."""
    if "npm" in artifact:
        spec = artifact["npm"]
        if not isinstance(spec, str) or not NPM_SPEC.fullmatch(spec):
            raise InputError(file, f"{field}.npm", "expected an npm registry package at an exact "
                             f"version (name@1.2.3 or @scope/name@1.2.3), got {spec!r}: git, file, "
                             "URL, path, tarball and tag specs are refused")
        for key in ("env", "ldflags"):
            if key in artifact:
                raise InputError(file, f"{field}.{key}", "only go artifacts take env and ldflags")
    elif "go" in artifact:
        spec = artifact["go"]
        if not isinstance(spec, str) or not GO_SPEC.fullmatch(spec):
            raise InputError(file, f"{field}.go", "expected a Go package from a module proxy at an "
                             f"exact version (host/path/cmd@v1.2.3), got {spec!r}: local paths, "
                             "branches and latest are refused")
        env = artifact.get("env", {})
        if not isinstance(env, dict):
            raise InputError(file, f"{field}.env", "expected a mapping of variable to value")
        for key, value in env.items():
            pattern = GO_ENV.get(key)
            if pattern is None:
                raise InputError(file, f"{field}.env.{key}", "a pack may set only "
                                 f"{', '.join(GO_ENV)} for go install, not {key!r}")
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise InputError(file, f"{field}.env.{key}",
                                 f"expected a value matching {pattern.pattern}, got {value!r}")
        if "ldflags" in artifact:
            check_ldflags(artifact["ldflags"], file, f"{field}.ldflags")
    elif "go_source" in artifact:
        # A Go main package kept in the pack (e.g. an ABCI application), compiled on the host
        # by images.build_go_source: CGO off (no C compiler), no toolchain download, no
        # workspace, no local `replace`, no VCS stamping, from a bounded copy of the folder.
        check_relative(artifact["go_source"], file, f"{field}.go_source")
        env = artifact.get("env", {})
        if not isinstance(env, dict):
            raise InputError(file, f"{field}.env", "expected a mapping of variable to value")
        for key, value in env.items():
            pattern = GO_ENV.get(key)
            if pattern is None or key == "CGO_ENABLED" and value != "0":
                raise InputError(file, f"{field}.env.{key}", "a go_source artifact may set only "
                                 f"{', '.join(k for k in GO_ENV if k != 'CGO_ENABLED')} (and "
                                 f"CGO_ENABLED \"0\": cgo is always off), not {key}={value!r}")
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise InputError(file, f"{field}.env.{key}",
                                 f"expected a value matching {pattern.pattern}, got {value!r}")
        if "ldflags" in artifact:
            check_ldflags(artifact["ldflags"], file, f"{field}.ldflags")
    else:
        raise InputError(file, field, "expected an npm, a go or a go_source artifact")
    check_relative(artifact.get("dest"), file, f"{field}.dest")


# A go_source folder is copied and compiled on the host: bounded in files and bytes.
GO_SOURCE_MAX_FILES = 2000
GO_SOURCE_MAX_BYTES = 32 << 20


def check_go_mod(replaces: Any, file: str, field: str) -> None:
    """`go mod edit -json`'s Replace list: only module@version replacements, never a
    filesystem path (which would compile host files from outside the pack)."""
    for replace in replaces or []:
        new = (replace or {}).get("New") or {}
        if not new.get("Version"):
            raise InputError(file, f"{field}.go_source", "go.mod replaces "
                             f"{(replace.get('Old') or {}).get('Path')!r} with the local path "
                             f"{new.get('Path')!r}: only module@version replacements are allowed")


def check_ldflags(ldflags: Any, file: str, field: str) -> None:
    if not isinstance(ldflags, str):
        raise InputError(file, field, f"expected a string, got {ldflags!r}")
    words = ldflags.split()
    index = 0
    while index < len(words):
        word = words[index]
        if any(pattern.fullmatch(word) for pattern in _LDFLAGS):
            index += 1
            continue
        if _LDFLAG_X.fullmatch(word) and index + 1 < len(words) \
                and _LDFLAG_X_VALUE.fullmatch(words[index + 1]):
            index += 2
            continue
        if word.startswith(("-X=", "--X=")) and _LDFLAG_X_VALUE.fullmatch(word.split("=", 1)[1]):
            index += 1
            continue
        raise InputError(file, field, f"linker flag {word!r} is not allowed (allowed: "
                         f"{LDFLAGS_ALLOWED}; no quotes)")


def check_relative(value: Any, file: str, field: str) -> str:
    """A path inside the pack: relative, no `..`, no NUL. Returns it."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InputError(file, field, f"expected a relative path inside the pack, got {value!r}")
    if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
        raise InputError(file, field, f"expected a relative path inside the pack, got the "
                         f"absolute path {value!r}")
    if ".." in re.split(r"[/\\]", value):
        raise InputError(file, field, f"expected a path inside the pack, got {value!r} (`..` "
                         "leaves it)")
    return value


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, links resolved, is `root` or below it."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def resolve_inside(root: Path, value: Any, file: str, field: str) -> Path:
    """root/value, checked to stay inside root once every link is followed."""
    check_relative(value, file, field)
    try:
        path = (root / value).resolve()
    except (OSError, RuntimeError) as exc:   # a link loop, a name too long
        raise InputError(file, field, f"not a usable path ({exc})") from None
    if not inside(path, root):
        raise InputError(file, field, f"{value!r} resolves to {path}, outside the pack folder {root}")
    return path


def check_tree(folder: Path, root: Path, file: str) -> None:
    """Every entry under `folder` is a file, a folder or a link that stays inside `root`:
    a link to the test center's signing key or to / never reaches a build or a digest."""
    root = root.resolve()
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            entry = Path(current, name)
            if entry.is_symlink():
                target = os.readlink(entry)
                if os.path.isabs(target) or not inside(entry, root):
                    raise InputError(file, None, f"the pack holds a link {entry} -> {target} "
                                     f"that leaves the pack folder {root}; links must be relative "
                                     "and stay inside the pack")
            elif not (entry.is_file() or entry.is_dir()):
                raise InputError(file, None, f"the pack holds {entry}, which is neither a file, a "
                                 "folder nor a link (a device, socket or pipe)")


def _split(ref: str) -> tuple[str | None, str, str | None] | None:
    """(registry, repository path, tag) of a reference; the registry None for Docker Hub."""
    match = IMAGE_REF.fullmatch(ref)
    if match is None:
        return None
    domain, path, tag = match.group("domain"), match.group("path"), match.group("tag")
    if domain is not None and "." not in domain and ":" not in domain and domain != "localhost":
        path, domain = f"{domain}/{path}", None    # `bctest/anvil`: a Docker Hub user, no domain
    return domain, path, tag


def canonical(ref: str) -> str:
    """A reference as the engine stores it: docker.io/library/debian:latest for `debian`."""
    parts = _split(ref)
    if parts is None:
        return ref
    domain, path, tag = parts
    tag = tag or "latest"
    if domain is None or domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return f"{domain}/{path}:{tag}"


def check_tag(tag: str, name: str, reference: bool, creates: bool, file: str) -> None:
    """A pack that builds or loads an image names it in its own namespace: a vendor pack
    as bctest-vendor/<name>:<tag>, a reference pack (chains/ of this checkout) as
    bctest/<name>:<tag>. A pack that only names an image may use any present image, but
    the harness pulls none into the test center's namespaces."""
    parts = _split(tag)
    if parts is None:
        raise InputError(file, "image.tag", f"expected a Docker image name:tag, got {tag!r}")
    if not creates:
        return
    repository = f"{VENDOR_NAMESPACE}/{name}"
    allowed = [repository]
    if reference:   # the test center's own packs; bctest/base and bctest/harness are no pack's
        if name in RESERVED_REFERENCE_NAMES:
            raise InputError(file, "name", f"{name!r} names a test-center image "
                             f"({REFERENCE_NAMESPACE}/{name}), not a pack")
        allowed.insert(0, repository := f"{REFERENCE_NAMESPACE}/{name}")
    if parts[0] is not None or parts[1] not in allowed or parts[2] is None:
        who = "a reference pack" if reference else "a vendor pack (outside the chains/ folder of bctest)"
        raise InputError(file, "image.tag", f"{who} that builds or loads its image must name it "
                         f"{repository}:<tag>, got {tag!r}: it may not write images it does not own")


def may_pull(tag: str) -> bool:
    """Whether a pull of `tag` stays out of the namespaces the test center owns."""
    return not canonical(tag).startswith(_RESERVED_PULL)


# Names the test center owns but whose content a registry user could own: an image the
# engine lacks under these names must never be pulled by a build's FROM or COPY --from.
_CENTER_PULL = (f"docker.io/{REFERENCE_NAMESPACE}/", f"docker.io/{VENDOR_NAMESPACE}/")
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?P<op>:?[-+])?(?P<word>[^}]*)\}|\$(?P<plain>\w+)")


def dockerfile_images(text: str, build_args: dict[str, str]) -> list[str]:
    """The images a Dockerfile's FROM and COPY --from name (stage names left out), with
    the global ARGs substituted as the classic builder does."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:   # parser directives come first: `# escape=``
        directive = re.fullmatch(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*", line.strip())
        if directive is None:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)[0]
    instructions, current = [], ""
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        instructions.append(current + stripped)
        current = ""
    if current:
        instructions.append(current)
    values: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    seen_from = False

    def substitute(word: str) -> str:
        def one(match: re.Match) -> str:
            name = match.group("braced") or match.group("plain")
            value, op = values.get(name), match.group("op")
            if op is None:
                return value or ""
            if op.startswith(":") and value == "":
                value = None
            if op.endswith("-"):
                return match.group("word") if value is None else value
            return "" if value is None else match.group("word")
        return _VARIABLE.sub(one, word)

    for instruction in instructions:
        words = instruction.split()
        op = words[0].upper()
        if op == "ARG" and not seen_from:
            for word in words[1:]:
                name, equals, default = word.partition("=")
                value = build_args.get(name, default.strip("\"'") if equals else None)
                if value is not None:
                    values[name] = value
        elif op == "FROM":
            seen_from = True
            rest = [word for word in words[1:] if not word.startswith("--")]
            image = substitute(rest[0]) if rest else ""
            if image.lower() not in stages and image != "scratch":
                found.append(image)
            if len(rest) >= 3 and rest[1].lower() == "as":
                stages.add(rest[2].lower())
        elif op in ("COPY", "ADD"):
            for word in words[1:]:
                if word.lower().startswith("--from="):
                    source = substitute(word.split("=", 1)[1])
                    if source.lower() not in stages and not source.isdigit():
                        found.append(source)
    return found


def check_build_images(dockerfile: Path, build_args: dict[str, str], present: Any, file: str) -> None:
    """Refuse a build whose FROM / COPY --from would make the engine pull an image into the
    test center's names (bctest/, bctest-vendor/): a registry user could own that content.
    `present(ref)` says whether the engine has the image (then nothing is pulled)."""
    field = "image.build.dockerfile"
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(file, field, f"{dockerfile} cannot be read as UTF-8 text ({exc})") from None
    for image in dockerfile_images(text, build_args):
        name = image.split("@", 1)[0]
        if _split(name) is None:
            raise InputError(file, field, f"{dockerfile} builds from {image!r}, which is not an "
                             "image name bctest can check")
        if "@" in image or present(image):
            continue
        if canonical(name).startswith(_CENTER_PULL):
            raise InputError(file, field, f"{dockerfile} builds from {image}, which is not present; "
                             "the engine would pull it from a registry into the test center's "
                             f"namespace ({REFERENCE_NAMESPACE}/, {VENDOR_NAMESPACE}/)")


def check_tarball(tarball: Path, tag: str, file: str) -> None:
    """Read the `docker save` tarball's naming files before `docker load` may act on them:
    one image, named exactly `tag`, and nothing else named anywhere."""
    field = "image.tarball"
    seen: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, mode="r:") as tar:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("/"))
                if name not in _TARBALL_NAME_FILES:
                    continue
                if name in seen:
                    raise InputError(file, field, f"{tarball} holds {name} twice")
                if not member.isfile() or member.size > _TARBALL_JSON_LIMIT:
                    raise InputError(file, field, f"{tarball}: {name} is not a small regular file")
                stream = tar.extractfile(member)
                seen[name] = stream.read() if stream is not None else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(file, field, f"{tarball} is not a readable `docker save` tar ({exc})") from None
    if "manifest.json" not in seen:
        raise InputError(file, field, f"{tarball} has no manifest.json: not a `docker save` tarball")
    want = canonical(tag)
    manifest = _json(seen["manifest.json"], tarball, "manifest.json", file)
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        count = len(manifest) if isinstance(manifest, list) else "no list of"
        raise InputError(file, field, f"{tarball} must hold exactly one image, its manifest.json "
                         f"lists {count} images")
    tags = manifest[0].get("RepoTags")
    if not isinstance(tags, list) or [canonical(t) if isinstance(t, str) else t for t in tags] != [want]:
        raise InputError(file, field, f"{tarball} must name exactly {tag} (image.tag), its "
                         f"manifest.json names {tags!r}")
    if "repositories" in seen:
        repositories = _json(seen["repositories"], tarball, "repositories", file)
        named = [f"{repo}:{t}" for repo, by_tag in (repositories or {}).items()
                 for t in (by_tag if isinstance(by_tag, dict) else {"?": 0})] \
            if isinstance(repositories, dict) else ["?"]
        if [canonical(n) for n in named] not in ([want], []):
            raise InputError(file, field, f"{tarball}: its repositories file names {named}, "
                             f"expected only {tag}")
    if "index.json" in seen:
        index = _json(seen["index.json"], tarball, "index.json", file)
        for entry in (index.get("manifests") or []) if isinstance(index, dict) else [None]:
            notes = entry.get("annotations") or {} if isinstance(entry, dict) else None
            if not isinstance(notes, dict):
                raise InputError(file, field, f"{tarball}: index.json is not an OCI index")
            full = notes.get("io.containerd.image.name")
            short = notes.get("org.opencontainers.image.ref.name")
            if (full is not None and canonical(str(full)) != want) or \
                    (short is not None and str(short) not in (tag, want, want.rsplit(":", 1)[1])):
                raise InputError(file, field, f"{tarball}: index.json names {full or short!r}, "
                                 f"expected only {tag}")


def _json(data: bytes, tarball: Path, name: str, file: str) -> Any:
    """JSON as the engine (Go) reads it: keys match case-insensitively and the last one wins,
    so two keys that differ only in case could show us one name and the engine another."""
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key.lower() for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise InputError(file, "image.tarball", f"{tarball}: {name} repeats a key")
        return dict(pairs)
    try:
        return json.load(io.BytesIO(data), object_pairs_hook=unique)
    except (ValueError, RecursionError):
        raise InputError(file, "image.tarball", f"{tarball}: {name} is not JSON") from None
