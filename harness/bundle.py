"""`bctest bundle`: make a submission folder from any chain pack, as a vendor would send it.

The pack's image (built first if missing) is saved with `docker save` under the vendor
namespace, bctest-vendor/<pack name>:<pack version>; the pack's chain.yaml is rewritten to
load that tarball (`image: {tag, tarball: image.tar}`, no build section: the test center
builds nothing from a submission). The result is checked as `bctest submit` would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from harness import chainpack, submission
from harness.errors import InfraError, InputError
from harness.packpolicy import VENDOR_NAMESPACE

VENDOR_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,38}")
DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE = "image.tar"


def _save(pack: chainpack.ChainPack, tag: str, target: Path, log) -> None:
    import docker

    from harness.runtime import images
    from harness.runtime.docker import connect

    client = connect()
    images.ensure(client, pack, log=log)
    repository, _, version = tag.rpartition(":")
    existed = any(tag in image.tags for image in client.images.list(name=repository))
    try:
        client.images.get(pack.image_tag).tag(repository, version)
        log(f"docker save {tag} > {target}")
        with open(target, "wb") as out:
            for chunk in client.images.get(tag).save(named=tag):
                out.write(chunk)
    except docker.errors.APIError as exc:
        raise InfraError(f"docker save {tag} failed: {str(exc).splitlines()[0]}") from None
    finally:
        if not existed:   # the tag was only a name for the tarball: leave the engine as it was
            try:
                client.images.remove(tag)
            except docker.errors.APIError:
                pass


def bundle(pack_ref: str, vendor: str, out: Path, claims: Path | None = None,
           profile: str | None = None, contact: str | None = None,
           log=lambda line: None) -> submission.Submission:
    if not VENDOR_NAME.fullmatch(vendor):
        raise InputError(None, "--vendor", f"2-39 characters: lower-case letters, digits and '-', "
                         f"not starting with '-'; got {vendor!r}")
    if profile is not None and profile not in submission.PROFILES:
        raise InputError(None, "--profile", f"one of {', '.join(submission.PROFILES)}, got {profile!r}")
    if claims is not None and not claims.is_file():
        raise InputError(str(claims), None, "a claims file (claims.yaml); nothing is there")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(str(out), None, "a new or empty folder for the submission")
    pack = chainpack.load(chainpack.resolve(pack_ref))
    if not DOCKER_TAG.fullmatch(pack.version):
        raise InputError(str(pack.manifest), "version", f"a Docker tag ([A-Za-z0-9_.-], at most 128) "
                         f"to name the image by, got {pack.version!r}")
    tag = f"{VENDOR_NAMESPACE}/{pack.name}:{pack.version}"
    folder = out / "pack"
    out.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(pack.folder, folder, symlinks=True,
                        ignore=lambda _, names: [n for n in names if n in (IMAGE, "chain.yaml")])
        document = yaml.safe_load(pack.manifest.read_text(encoding="utf-8"))
        document["image"] = {"tag": tag, "tarball": IMAGE}
        (folder / "chain.yaml").write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        _save(pack, tag, folder / IMAGE, log)
        manifest: dict = {"vendor": {"name": vendor}, "pack": "pack"}
        if contact:
            manifest["vendor"]["contact"] = contact
        if claims is not None:
            shutil.copyfile(claims, out / "claims.yaml")
            manifest["claims"] = "claims.yaml"
        if profile is not None:
            manifest["profile"] = profile
        (out / submission.MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
        return submission.load(out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
