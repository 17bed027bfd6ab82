"""Adapters come from the entry-point group; a suite's workload must be one the adapter makes."""

from __future__ import annotations

import pytest

from harness import adapters
from harness.adapters.cometbft import CometbftAdapter
from harness.adapters.evm import EvmAdapter
from harness.errors import InputError


def test_reference_families_are_registered_entry_points():
    assert {"evm", "cometbft", "bitcoin"} <= set(adapters.installed())
    assert adapters.adapter_class("evm") is EvmAdapter


def test_unknown_family_lists_the_installed_ones():
    with pytest.raises(InputError) as error:
        adapters.adapter_class("fabric", "chains/x/chain.yaml")
    assert error.value.field == "family" and "evm" in str(error.value) and "fabric" in str(error.value)


def test_workload_defaults_to_the_adapters_first_and_rejects_what_it_cannot_make():
    assert adapters.workload_for(EvmAdapter, None, "s.yaml") == "transfer"
    assert adapters.workload_for(CometbftAdapter, None, "s.yaml") == "kv"
    with pytest.raises(InputError) as error:
        adapters.workload_for(CometbftAdapter, "transfer", "s.yaml")
    assert error.value.field == "workload.kind" and "generates kv, not transfer" in str(error.value)
