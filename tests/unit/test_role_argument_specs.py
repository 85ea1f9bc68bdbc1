"""Every role's defaults/main.yml and meta/argument_specs.yml describe the same variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "defaults" / "main.yml").exists())


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_there_are_roles_to_check():
    assert "host_prep" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role):
    defaults = load(REPO_ROOT / "roles" / role / "defaults" / "main.yml")
    options = load(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options), "a variable is in one file and not the other"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{name}: default differs between the two files"
        assert options[name].get("description"), f"{name}: no description"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = load(REPO_ROOT / "roles" / role / "defaults" / "main.yml")
    assert all(name.startswith(f"{role}_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES)
def test_role_has_a_readme(role):
    readme = REPO_ROOT / "roles" / role / "README.md"
    assert readme.exists()
    text = readme.read_text()
    for name in load(REPO_ROOT / "roles" / role / "defaults" / "main.yml"):
        assert f"`{name}`" in text, f"{name} is not documented in {readme}"
