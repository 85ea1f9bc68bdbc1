"""transient_unit with systemctl and systemd-run answered from a queue; the exact argv asserted."""

from __future__ import annotations

import os

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._units import (
    environment_file_text,
    parse_show,
    should_attach,
    systemd_run_argv,
)
from ansible_collections.llmops.inference.plugins.modules import transient_unit


@pytest.fixture
def commands(monkeypatch, tmp_path):
    """Queue answers for run_command; every argv is recorded, with the env file as it was."""
    from ansible.module_utils import basic

    calls, answers = [], []

    def run_command(self, argv, **_kwargs):
        seen = {}
        if "--property" in argv:
            for value in argv:
                if value.startswith("EnvironmentFile="):
                    path = value.split("=", 1)[1]
                    seen = {"env_text": open(path).read(), "env_mode": oct(os.stat(path).st_mode & 0o777)}
        calls.append((list(argv), seen))
        return answers.pop(0) if answers else (0, "", "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return calls, answers


def test_a_running_unit_is_attached_to_and_nothing_starts(commands, run_module):
    calls, answers = commands
    answers.append((0, "ActiveState=active\nSubState=running\n", ""))
    result, failed = run_module(transient_unit.main, {"name": "fetch", "command": ["python3", "fetch.py"]})
    assert not failed and result == {"changed": False, "attached": True}
    assert [argv for argv, _seen in calls] == [["/usr/bin/systemctl", "show", "--property", "ActiveState,SubState", "fetch"]]


def test_a_finished_unit_is_started_again_with_its_environment_in_a_0600_file_removed_after(commands, run_module, tmp_path):
    calls, answers = commands
    answers.append((0, "ActiveState=active\nSubState=exited\n", ""))
    args = {"name": "fetch", "command": ["python3", "fetch.py", "--dest", "/d"], "environment": {"HF_TOKEN": "hf-secret"},
            "remain_after_exit": True, "runtime_dir": str(tmp_path / "run")}
    result, failed = run_module(transient_unit.main, args)
    env_file = str(tmp_path / "run" / "fetch.env")
    assert not failed and result["changed"] and not result["attached"]
    assert [argv for argv, _seen in calls[1:3]] == [
        ["/usr/bin/systemctl", "stop", "fetch"], ["/usr/bin/systemctl", "reset-failed", "fetch"]]
    argv, seen = calls[3]
    assert argv == ["/usr/bin/systemd-run", "--quiet", "--unit", "fetch", "--remain-after-exit",
                    "--property", "EnvironmentFile=" + env_file, "--property", "Type=exec",
                    "--", "python3", "fetch.py", "--dest", "/d"]
    assert seen == {"env_text": "HF_TOKEN=hf-secret\n", "env_mode": "0o600"}
    assert "hf-secret" not in repr(result) and not os.path.exists(env_file)


def test_restarted_stops_a_running_unit_and_starts_it_fresh(commands, run_module):
    calls, answers = commands
    answers.append((0, "ActiveState=active\nSubState=running\n", ""))
    result, _failed = run_module(transient_unit.main, {"name": "mirror", "command": ["python3", "m.py"],
                                                       "state": "restarted", "properties": {"RuntimeMaxSec": 600}})
    assert result["changed"] and calls[-1][0] == [
        "/usr/bin/systemd-run", "--quiet", "--unit", "mirror", "--property", "RuntimeMaxSec=600", "--", "python3", "m.py"]


def test_check_mode_starts_nothing(commands, run_module):
    calls, answers = commands
    answers.append((0, "ActiveState=inactive\nSubState=dead\n", ""))
    result, _failed = run_module(transient_unit.main, {"name": "fetch", "command": ["true"], "_ansible_check_mode": True})
    assert result["changed"] and len(calls) == 1


def test_a_refused_start_fails_with_the_evidence_and_leaves_no_environment_file(commands, run_module, tmp_path):
    calls, answers = commands
    answers += [(0, "SubState=dead\n", ""), (0, "", ""), (0, "", ""), (1, "", "Unit fetch.service already exists.")]
    result, failed = run_module(transient_unit.main, {"name": "fetch", "command": ["true"], "environment": {"A": "1"},
                                                      "runtime_dir": str(tmp_path)})
    assert failed and result["rc"] == 1 and "already exists" in result["stderr"]
    assert not list(tmp_path.iterdir())


def test_helpers():
    assert parse_show("SubState=running\nbogus\n") == {"SubState": "running"}
    assert should_attach("started", {"SubState": "running"}) and not should_attach("restarted", {"SubState": "running"})
    assert not should_attach("started", {"SubState": "failed"})
    assert systemd_run_argv("sr", "u", ["c"], {}, False, "") == ["sr", "--quiet", "--unit", "u", "--", "c"]
    assert environment_file_text({"B": 2, "A": "x"}) == "A=x\nB=2\n"
    with pytest.raises(ValueError):
        environment_file_text({"A": "two\nlines"})
