"""A vendor's submission: loaded, validated completely, stored content-addressed.

A submission is a folder (or a .tar / .tar.gz of one) holding submission.yaml, a chain pack
whose image is a `docker save` tarball, and optionally claims.yaml (docs/submissions.md).
Everything in it is hostile input: a tarball is extracted member by member (no absolute
paths, no `..`, no links, no devices, bounded sizes) into the data folder, and it is that
copy (which the vendor can no longer change) that is validated, hashed and kept.

Every problem found is reported at once (a vendor fixes them all in one round), each naming
the file, the field and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import chainpack, packpolicy, validation
from harness.chainpack import ChainPack
from harness.errors import InputError

MANIFEST = "submission.yaml"
MAX_BYTES = 8 * 1024**3      # a submission's files together (the image tarball is most of it)
MAX_FILES = 10_000
MAX_NAME = 1024              # characters in one member's path
PROFILES = ("quick", "full", "smoke")


class SubmissionInvalid(InputError):
    """Every problem of a submission, listed (exit 2)."""

    def __init__(self, source: str, problems: list[InputError]):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(source, None, f"the submission is invalid ({len(problems)} "
                         f"problem{'s' if len(problems) != 1 else ''}):\n{listing}")


@dataclass(frozen=True)
class Submission:
    folder: Path           # holds submission.yaml
    vendor: str
    contact: str | None
    pack: ChainPack
    claims: Path | None
    profile: str
    digest: str            # sha256 over the canonical listing of files and contents


def digest(folder: Path) -> str:
    """sha256 over one line per file, sorted by path: `path NUL size NUL sha256(content)`.
    The same content gives the same id whether it came as a folder or a tarball."""
    lines = []
    for path in sorted(_files(folder), key=lambda p: p.relative_to(folder).as_posix()):
        content = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                content.update(block)
        lines.append(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0{content.hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _files(folder: Path) -> list[Path]:
    return [Path(current, name) for current, _, names in os.walk(folder) for name in names]


# -- bringing the content in ---------------------------------------------------------------

def _invalid(file: str, field: str | None, expected: str) -> SubmissionInvalid:
    return SubmissionInvalid(file, [InputError(file, field, expected)])


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = posixpath.normpath(name).split("/")
    if len(name) > MAX_NAME:
        return f"a member name longer than {MAX_NAME} characters"
    if name.startswith("/") or posixpath.isabs(name):
        return f"member {name!r} has an absolute path"
    if ".." in name.split("/") or parts[0] == "..":
        return f"member {name!r} climbs out of the submission with '..'"
    if "\0" in name:
        return f"member {name!r} has a NUL byte in its name"
    if member.issym() or member.islnk():
        return f"member {name!r} is a link (to {member.linkname!r}); links are not accepted"
    if not (member.isfile() or member.isdir()):
        return f"member {name!r} is neither a file nor a folder (a device, pipe or other special file)"
    return None


def extract(tarball: Path, dest: Path, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> None:
    """Extract a .tar / .tar.gz safely into the empty folder `dest`; every hostile member is
    a listed problem, and nothing is written until the whole listing is checked."""
    problems: list[InputError] = []
    file = str(tarball)
    try:
        with tarfile.open(tarball, mode="r:*") as tar:
            members = []
            total = 0
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    problems.append(InputError(file, member.name[:200], problem))
                else:
                    members.append(member)
                    total += member.size if member.isfile() else 0
                if len(members) > max_files:
                    problems.append(InputError(file, None, f"at most {max_files} files"))
                    break
                if total > max_bytes:
                    problems.append(InputError(file, None, f"at most {max_bytes} bytes once extracted"))
                    break
                if len(problems) >= 20:
                    break
            if problems:
                raise SubmissionInvalid(file, problems)
            seen: set[str] = set()
            for member in members:
                relative = posixpath.normpath(member.name)
                if relative in (".", ""):
                    continue
                if relative in seen and member.isfile():
                    raise _invalid(file, relative, "each file once; this name appears twice")
                seen.add(relative)
                target = dest / relative
                if not packpolicy.inside(target, dest):   # belt and braces after the checks above
                    raise _invalid(file, relative, "a path inside the submission")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise _invalid(file, relative, "a file, not also a folder")
                stream = tar.extractfile(member)
                with open(target, "wb") as out:
                    if stream is not None:
                        shutil.copyfileobj(stream, out, 1 << 20)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise _invalid(file, None, f"a readable .tar or .tar.gz ({exc})") from None


def copy_folder(source: Path, dest: Path, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> None:
    """Copy a submission folder: files and folders only (a link or device is a problem)."""
    problems: list[InputError] = []
    total = count = 0
    for current, dirs, names in os.walk(source, followlinks=False):
        for name in dirs + names:
            entry = Path(current, name)
            mode = entry.lstat().st_mode
            relative = entry.relative_to(source).as_posix()
            if stat.S_ISLNK(mode):
                problems.append(InputError(str(source), relative, f"is a link (to {os.readlink(entry)!r}); "
                                           "links are not accepted"))
            elif stat.S_ISREG(mode):
                total += entry.lstat().st_size
                count += 1
            elif not stat.S_ISDIR(mode):
                problems.append(InputError(str(source), relative, "neither a file nor a folder "
                                           "(a device, pipe or socket)"))
    if count > max_files:
        problems.append(InputError(str(source), None, f"at most {max_files} files, found {count}"))
    if total > max_bytes:
        problems.append(InputError(str(source), None, f"at most {max_bytes} bytes, found {total}"))
    if problems:
        raise SubmissionInvalid(str(source), problems)
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


def _root(folder: Path) -> Path:
    """The folder holding submission.yaml: the top, or the one folder a tarball wrapped it in."""
    if (folder / MANIFEST).exists():
        return folder
    entries = list(folder.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST).exists():
        return entries[0]
    return folder


# -- validation ----------------------------------------------------------------------------

def _claims_problem(path: Path, profile: Any) -> InputError | None:
    """The claims as `bctest certify` will read them (schema, and within the profile's
    ceiling: the worker must not be handed a load it refuses only after queueing)."""
    from harness.certify import claims, execute
    from harness.certify.program import PROFILES
    try:
        execute.check_claims(claims.load(path), profile if profile in PROFILES else "full", path)
    except InputError as exc:
        return exc
    return None


def load(folder: Path) -> Submission:
    """Validate a submission folder completely; SubmissionInvalid lists every problem."""
    folder = _root(folder)
    manifest = folder / MANIFEST
    file = str(manifest)
    problems: list[InputError] = []
    try:
        document = validation.load_yaml(manifest)
    except InputError as exc:
        raise SubmissionInvalid(str(folder), [exc]) from None
    if not isinstance(document, dict):
        raise SubmissionInvalid(str(folder), [InputError(file, None, "a mapping with vendor, pack, "
                                                         f"claims, profile; got {type(document).__name__}")])
    try:
        validation.validate(document, "submission", file)
    except InputError as first:
        # one error at a time is not enough here: list each of them
        validator = validation._Validator(validation.schema("submission"))
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
            where, message = validation._describe(error)
            problems.append(InputError(file, where, message))
        if not problems:
            problems.append(first)
    vendor = document.get("vendor") if isinstance(document.get("vendor"), dict) else {}
    pack = None
    pack_field = document.get("pack")
    if isinstance(pack_field, str) and pack_field:
        try:
            pack_dir = packpolicy.resolve_inside(folder, pack_field, file, "pack")
            if not (pack_dir / "chain.yaml").is_file():
                raise InputError(file, "pack", f"a folder with chain.yaml; {pack_dir} has none")
            pack = chainpack.load(pack_dir)
            if pack.tarball is None or pack.build is not None:
                problems.append(InputError(str(pack.manifest), "image", "the image as a `docker save` "
                                           "tarball (image.tarball), and no build section: the test "
                                           "center builds nothing from a submission"))
                pack = None
        except InputError as exc:
            problems.append(exc)
        except (OSError, ValueError) as exc:
            problems.append(InputError(file, "pack", f"a usable folder ({exc})"))
    claims = None
    claims_field = document.get("claims")
    if isinstance(claims_field, str) and claims_field:
        try:
            claims = packpolicy.resolve_inside(folder, claims_field, file, "claims")
            if not claims.is_file():
                raise InputError(file, "claims", f"an existing file; {claims} does not exist")
            problem = _claims_problem(claims, document.get("profile", "full"))
            if problem:
                problems.append(problem)
        except InputError as exc:
            problems.append(exc)
    if problems:
        raise SubmissionInvalid(str(folder), problems)
    assert pack is not None
    return Submission(folder=folder, vendor=vendor["name"], contact=vendor.get("contact"), pack=pack,
                      claims=claims, profile=document.get("profile", "full"), digest=digest(folder))


# -- storing -------------------------------------------------------------------------------

def _renamed(exc: SubmissionInvalid, old: str, new: str, source: str) -> SubmissionInvalid:
    def swap(text: str | None) -> str | None:
        return text.replace(old, new) if text else text
    return SubmissionInvalid(source, [InputError(swap(p.file), p.field, swap(p.expected) or "")
                                      for p in exc.problems])


def stored_folder(data: Path, submission_id: str) -> Path:
    return data / "submissions" / submission_id


def _read_only(folder: Path) -> None:
    for current, dirs, names in os.walk(folder):
        for name in names:
            os.chmod(Path(current, name), 0o444)
        for name in dirs:
            os.chmod(Path(current, name), 0o555)
    os.chmod(folder, 0o555)


def accept(source: Path, data: Path) -> Submission:
    """Bring a submission (folder or tarball) into the data folder, validate that copy
    completely and keep it, read-only, as DATA/submissions/<sha256>/. The same content
    twice is the same folder."""
    if not source.exists():
        raise InputError(str(source), None, "a submission folder or a .tar / .tar.gz of one; "
                         "nothing is there")
    store = data / "submissions"
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=store))
    try:
        if source.is_dir():
            copy_folder(source, staging)
        elif source.is_file():
            extract(source, staging)
        else:
            raise InputError(str(source), None, "a folder or a tarball, not a special file")
        try:
            submission = load(staging)
        except SubmissionInvalid as exc:
            # name the vendor's files, not our staging copy of them
            shown = f"{source}/" if source.is_dir() else f"{source}:"
            raise _renamed(exc, f"{_root(staging)}/", shown, str(source)) from None
        target = stored_folder(data, submission.digest)
        if not target.exists():
            os.replace(_root(staging), target)
            _read_only(target)
        return load(target)
    finally:
        if staging.exists():
            for current, dirs, _ in os.walk(staging):   # anything still staged was read-write
                for name in dirs:
                    os.chmod(Path(current, name), 0o755)
            shutil.rmtree(staging, ignore_errors=True)
