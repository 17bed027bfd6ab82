"""How vendors deliver: an adapter as its own pip package, an image as a `docker save`
tarball. Both must work with no code in this repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import docker.errors

from .conftest import ROOT, bctest, results, run_objects, write_suite

EXAMPLE = ROOT / "tests" / "fixtures" / "bctest-adapter-example"


def test_out_of_tree_adapter_package_is_found_through_its_entry_point(
        docker_client, anvil_image, tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    source = tmp_path / "adapter-package"  # a copy: building writes build/ into the source
    shutil.copytree(EXAMPLE, source)
    installed = subprocess.run([*pip, "install", "--no-build-isolation", str(source)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    try:
        pack = tmp_path / "vendor"
        pack.mkdir()
        manifest = (ROOT / "chains" / "anvil" / "chain.yaml").read_text()
        (pack / "chain.yaml").write_text(
            manifest.replace("family: evm", "family: example-evm").replace("name: anvil", "name: vendor")
            .split("image:")[0] + 'image: {tag: "bctest/anvil:1.7.1"}\nports: {rpc: 8545}\n'
            "params: {block_time: 1, gas_limit: 300000000, quiet: true}\n")
        suite = write_suite(tmp_path, "vendor", f"name: vendor\nchain: {pack}\n"
                            "load: {rate: 20, warmup: 1, duration: 3, settle: 10}\naudit: true\n")
        run_dir = tmp_path / "run"
        done = bctest("run", str(suite), "--out", str(run_dir))
        assert done.returncode == 0, done.stdout + done.stderr
        history_header = json.loads((run_dir / "history.jsonl").open().readline())
        assert history_header["bootstrap"] == {"adapter": "bctest-adapter-example", "nodes": ["node0"]}
        got = results(run_dir)
        assert got["chain"]["family"] == "example-evm"
        # The package's own audit (entry point bctest.audits) judged the chain it read back,
        # and its report writer (bctest.report_writers) wrote beside bctest's reports.
        assert got["audit"]["family"] == "example-evm", got["audit"]
        assert got["audit"]["signatures"]["verdict"] == "pass", got["audit"]
        assert got["audit"]["hash_links"]["checked"] > 0
        assert (run_dir / "verdicts.csv").read_text().startswith("id,verdict\n")
    finally:
        subprocess.run([*pip, "uninstall", "--yes", "bctest-adapter-example"], capture_output=True)
    gone = bctest("validate", str(pack))
    assert gone.returncode == 2 and "no adapter 'example-evm' is installed" in gone.stderr
    assert "evm" in gone.stderr  # the message lists what is installed


def test_image_delivered_as_a_docker_save_tarball(docker_client, anvil_image, tmp_path):
    tag = "bctest-vendor/vendor:tarball-test"   # a vendor pack's images live in its own namespace
    # A distinct image (its own top layer), so removing it really removes it.
    base = docker_client.containers.create(anvil_image, entrypoint=["true"])
    try:
        base.put_archive("/tmp", _one_file_tar(b"delivered by tarball\n"))
        original = docker_client.images.get(anvil_image).attrs["Config"]
        image = base.commit(repository="bctest-vendor/vendor", tag="tarball-test",
                            conf={"Entrypoint": original["Entrypoint"], "Cmd": original["Cmd"],
                                  "User": original["User"]})
    finally:
        base.remove(force=True)
    pack = tmp_path / "vendor"
    pack.mkdir()
    tarball = pack / "vendor-anvil.tar"   # inside the pack folder, as every pack path must be
    with open(tarball, "wb") as out:
        for chunk in docker_client.images.get(tag).save(named=True):
            out.write(chunk)
    docker_client.images.remove(image.id, force=True)
    try:
        docker_client.images.get(tag)
        raise AssertionError("the image should be gone before the run")
    except docker.errors.ImageNotFound:
        pass
    (pack / "chain.yaml").write_text(
        "name: vendor\nversion: '1'\nfamily: evm\nconsensus: {kind: single}\nchain_id: 31337\n"
        f"image: {{tag: '{tag}', tarball: vendor-anvil.tar}}\nports: {{rpc: 8545}}\n"
        "params: {block_time: 1, gas_limit: 300000000, quiet: true}\n")
    suite = write_suite(tmp_path, "tarball", f"name: tarball\nchain: {pack}\n"
                        "load: {rate: 20, warmup: 1, duration: 3, settle: 10}\n")
    run_dir = tmp_path / "run"
    try:
        done = bctest("run", str(suite), "--out", str(run_dir))
        assert done.returncode == 0, done.stdout + done.stderr
        got = results(run_dir)
        assert got["chain"]["image"]["id"] == docker_client.images.get(tag).id
        assert got["phases"]["measure"]["committed"] == got["phases"]["measure"]["submitted"] == 60
        assert run_objects(docker_client, got["run_id"]) == []
    finally:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def _one_file_tar(content: bytes) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("vendor-marker")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
