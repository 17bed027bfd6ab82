"""The harness as an image (top-level Dockerfile): built offline, it runs a real suite
against the host's engine through the mounted socket."""

from __future__ import annotations

import json

from harness import __version__

from .conftest import bctest, run_objects

TAG = f"bctest/harness:{__version__}-test"


def test_harness_image_runs_a_suite_through_the_host_engine(docker_client, anvil_image, tmp_path):
    built = bctest("images", "harness", "--tag", TAG, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    (tmp_path / "tiny.yaml").write_text(
        "name: tiny\nchain: anvil\nload: {rate: 50, warmup: 1, duration: 4, settle: 15}\n"
        "checks:\n  - {metric: success_ratio, op: '>=', value: 0.99}\n")
    tmp_path.chmod(0o777)
    output = docker_client.containers.run(
        TAG, ["run", "/work/tiny.yaml", "--out", "/work/out"], remove=True, network_mode="host",
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                 str(tmp_path): {"bind": "/work", "mode": "rw"}},
        stdout=True, stderr=True).decode()
    got = json.loads((tmp_path / "out" / "results.json").read_text())
    assert got["verdict"] == "pass", output
    assert got["phases"]["measure"]["committed"] == got["phases"]["measure"]["submitted"] == 200
    assert (tmp_path / "out" / "report.html").stat().st_size > 10_000
    assert run_objects(docker_client, got["run_id"]) == []
