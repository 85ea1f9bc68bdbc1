"""The run_lock action with the modules it runs on the head played here, on a real file: slurp
reads it, file removes it, and the exclusive create runs the action's own shell command."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from ansible_collections.llmops.inference.plugins.action import run_lock


def run_module_here(module_name, module_args=None, task_vars=None):
    args = module_args or {}
    if module_name == "ansible.builtin.slurp":
        try:
            with open(args["src"], "rb") as handle:
                return {"content": base64.b64encode(handle.read()).decode()}
        except FileNotFoundError:
            return {"failed": True, "msg": "file not found: %s" % args["src"]}
    if module_name == "ansible.builtin.file":
        if os.path.exists(args["path"]):
            os.unlink(args["path"])
        return {"changed": True}
    if module_name == "ansible.legacy.command":
        done = subprocess.run(args["argv"], input=args["stdin"] + "\n", capture_output=True, text=True, check=False)
        return {"rc": done.returncode, "stderr": done.stderr}
    raise AssertionError(module_name)


def lock(path, check_mode=False, **args):
    """One run of the action, as a task of this process's run would run it."""
    action = run_lock.ActionModule.__new__(run_lock.ActionModule)
    action._task = SimpleNamespace(check_mode=check_mode, args=dict(path=str(path), **args), async_val=0)
    action._execute_module = run_module_here
    action.validate_argument_spec = lambda argument_spec: (None, dict(
        {"state": "held", "take_over": False, "playbook": ""}, **action._task.args))
    return run(action)


def run(action):
    # ActionBase.run only checks arguments and connection details: start from an empty result.
    original = run_lock.ActionBase.run
    run_lock.ActionBase.run = lambda self, tmp=None, task_vars=None: {}
    try:
        return run_lock.ActionModule.run(action, task_vars={})
    finally:
        run_lock.ActionBase.run = original


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "run.lock"


def test_a_run_takes_the_lock_0600_keeps_it_and_gives_it_back(path):
    taken = lock(path, playbook="tags serve")
    assert not taken.get("failed") and taken["changed"] is False
    written = json.loads(path.read_text())
    assert (written["pid"], written["playbook"]) == (os.getppid(), "tags serve") and oct(path.stat().st_mode & 0o777) == "0o600"
    # The data root it created is not made private: the host phase keeps the mode it finds.
    mask = os.umask(0)
    os.umask(mask)
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o777 & ~mask)
    again = lock(path)  # the same run again (a second entry into preflight): still its own
    assert not again.get("failed") and json.loads(path.read_text())["started"] == written["started"]
    released = lock(path, state="released")
    assert released["released"] is True and not path.exists()


def test_a_live_run_holds_it_and_a_gone_one_is_taken_over(path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ansible-playbook-stand-in"])
    while b"stand-in" not in open("/proc/%d/cmdline" % holder.pid, "rb").read():
        time.sleep(0.01)  # until the child has exec'd: before, it is a copy of this process
    try:
        path.parent.mkdir()
        path.write_text(json.dumps({"controller": os.uname().nodename, "pid": holder.pid, "user": "ops",
                                    "started": 0, "playbook": "tags cluster"}))
        refused = lock(path)
        assert refused["failed"] and refused["msg"].startswith(
            "Another run holds the cluster's run lock: ops@%s (ansible-playbook pid %d, tags cluster)" % (os.uname().nodename, holder.pid))
        assert "take_over" not in refused["msg"]  # on this controller it is known to run: only wait
        # Released by another run: not ours, nothing removed.
        assert lock(path, state="released")["released"] is False and path.exists()
    finally:
        holder.kill()
        holder.wait()
    taken = lock(path)
    assert not taken.get("failed") and taken["took_over"].startswith("ops@%s (ansible-playbook pid %d" % (os.uname().nodename, holder.pid))
    assert json.loads(path.read_text())["pid"] == os.getppid()


def test_another_controllers_lock_needs_take_over_and_a_corrupt_one_is_replaced(path):
    path.parent.mkdir()
    path.write_text(json.dumps({"controller": "elsewhere", "pid": 1, "user": "ops", "started": 0}))
    refused = lock(path)
    assert refused["failed"] and "rerun with -e llmops_run_lock_take_over=true or remove %s" % path in refused["msg"]
    assert not lock(path, take_over=True).get("failed") and json.loads(path.read_text())["controller"] == os.uname().nodename
    path.write_text('"not a lock"')
    assert not lock(path).get("failed") and json.loads(path.read_text())["pid"] == os.getppid()


def test_check_mode_writes_nothing(path):
    assert not lock(path, check_mode=True).get("failed") and not path.exists()


def test_the_exclusive_create_refuses_a_lock_that_appeared(path):
    path.parent.mkdir()
    path.write_text("{}")
    create = {"argv": ["sh", "-c", run_lock.CREATE, "run_lock", str(path)], "stdin": "mine"}
    created = run_module_here("ansible.legacy.command", create)
    assert created["rc"] != 0 and path.read_text() == "{}"
