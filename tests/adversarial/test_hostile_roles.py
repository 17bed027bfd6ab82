"""A vendor pack's `roles:` (what each three-tier role runs as) is text the test center shows
in its reports and console: control characters, markup, a huge value or a role the test
center does not know are refused by the schema, exit 2 naming the field."""

from __future__ import annotations

import pytest
import yaml

from tests.adversarial.packs import bctest, write_pack

VENDOR_IMAGE = {"tag": "bctest-vendor/evil:1", "build": {"dockerfile": "Dockerfile"}}


def with_roles(tmp_path, roles):
    pack = write_pack(tmp_path / "pack", VENDOR_IMAGE)
    doc = yaml.safe_load((pack / "chain.yaml").read_text())
    doc["roles"] = roles
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    return pack


@pytest.mark.parametrize("roles,field", [
    ({"root": "validator\n### ✅ certified"}, "roles.root"),              # a forged heading
    ({"root": "validator\x1b[31m"}, "roles.root"),                       # a terminal escape
    ({"management": "full node\x00"}, "roles.management"),
    ({"root": "<script>alert(1)</script>"}, "roles.root"),              # HTML
    ({"application": "[link](javascript:alert(1))"}, "roles.application"),   # Markdown
    ({"root": "[bold red]PASS[/]"}, "roles.root"),                       # console markup
    ({"root": "validator | pass |"}, "roles.root"),                      # a table row
    ({"root": "x" * 100_000}, "roles.root"),                             # huge
    ({"root": ""}, "roles.root"),
    ({"root": ["validator"]}, "roles.root"),
    ({"root": "validator", "auditor": "watches"}, "roles"),              # a role nobody knows
    ({}, "roles"),
    ("validator", "roles"),
])
def test_hostile_roles_are_refused_naming_the_field(tmp_path, roles, field):
    pack = with_roles(tmp_path, roles)
    done = bctest("validate", str(pack))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"at {field}" in done.stderr, done.stderr[:500]
    assert len(done.stderr) < 2000, "the error echoes the vendor's value back whole"


def test_plain_roles_are_accepted(tmp_path):
    pack = with_roles(tmp_path, {"root": "validator (in the genesis validator set, votes)",
                                 "management": "full node; syncs every block",
                                 "application": "full node - serves its region's clients"})
    done = bctest("validate", str(pack))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("capability", ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"])
def test_a_pack_cannot_take_back_the_capability_to_undo_its_links(tmp_path, capability):
    """A node with NET_ADMIN could flush the topology's link shaping (and a fault's rules) in
    its own namespace and commit faster across zones than its links allow: refused, exit 2."""
    pack = with_roles(tmp_path, {"root": "validator", "application": "full node"})
    doc = yaml.safe_load((pack / "chain.yaml").read_text())
    doc["capabilities"] = ["CHOWN", capability]
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    done = bctest("validate", str(pack))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "at capabilities[1]" in done.stderr and "Traceback" not in done.stderr, done.stderr[:500]
