"""The serving_containers action takes exactly the values vllm_specs reads, typed and documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from ansible_collections.llmops.inference.plugins.action.serving_containers import ARGUMENT_SPEC, SETTINGS
from ansible_collections.llmops.inference.plugins.modules import serving_containers

# The node values the spec tests build containers from (tests/unit/plugins/module_utils/test_plans.py).
_PLANS_TEST = Path(__file__).resolve().parents[1] / "module_utils" / "test_plans.py"
_spec = importlib.util.spec_from_file_location("plans_test_values", _PLANS_TEST)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
NODE = _module.NODE


def test_the_settings_are_the_keys_vllm_specs_reads():
    assert sorted(SETTINGS) == sorted(NODE)


def test_every_option_is_documented_with_its_type():
    documented = yaml.safe_load(serving_containers.DOCUMENTATION)["options"]
    assert sorted(documented) == sorted(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        assert documented[name]["type"] == spec["type"], name
        assert bool(documented[name].get("required")) == bool(spec.get("required")), name
