"""The shape the collection keeps: roles never run another role's tasks, no global the
collection sets needs a lint exception, and every entry playbook begins with the preflight
header."""

from __future__ import annotations

import yaml

from conftest import REPO_ROOT

ROLES = REPO_ROOT / "roles"
PLAYBOOKS = REPO_ROOT / "playbooks"


def yaml_files(folder):
    return sorted(folder.rglob("*.yml"))


def test_no_role_runs_another_roles_tasks():
    offenders = [str(path.relative_to(REPO_ROOT)) for path in yaml_files(ROLES)
                 if "include_role" in path.read_text(encoding="utf-8") or "import_role" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_no_variable_naming_exception_and_no_preflight_guard():
    files = yaml_files(ROLES) + yaml_files(PLAYBOOKS) + [REPO_ROOT / "deploy.yml"]
    for marker in ("noqa: var-naming", "llmops_preflight_passed"):
        assert [str(path.relative_to(REPO_ROOT)) for path in files if marker in path.read_text(encoding="utf-8")] == []


def test_every_entry_playbook_begins_with_the_preflight_header():
    alone = [path for path in sorted(PLAYBOOKS.glob("*.yml"))
             if path.name not in ("preflight.yml", "lock.yml", "release.yml", "benchmark_compare.yml")]
    entries = [REPO_ROOT / "deploy.yml"] + alone
    for path in entries:
        plays = yaml.safe_load(path.read_text(encoding="utf-8"))
        first, last = plays[0], plays[-1]
        assert first.get("ansible.builtin.import_playbook") == "llmops.inference.preflight", path.name
        assert "always" in first.get("tags", []), path.name
        # ... then takes the cluster's run lock, and ends by giving it back.
        assert plays[1].get("ansible.builtin.import_playbook") == "llmops.inference.lock", path.name
        assert last.get("ansible.builtin.import_playbook") == "llmops.inference.release", path.name
        assert "always" in plays[1].get("tags", []) and "always" in last.get("tags", []), path.name
        phases = [play["ansible.builtin.import_playbook"] for play in plays[2:-1]]
        assert phases and all(name.startswith("llmops.inference.phases.") for name in phases), path.name
