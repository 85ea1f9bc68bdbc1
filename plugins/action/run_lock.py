# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's run lock: one ansible-playbook run at a time (see plugins/modules/run_lock.py).

Runs on the control node, where the run's own process is: the lock file on the head names the
controller, the ansible-playbook process and its start, so a lock left by a run that was
killed on this controller is recognised (its process is gone) and taken over.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
import time

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = dict(
    path=dict(type="str", required=True),
    state=dict(type="str", choices=["held", "released"], default="held"),
    take_over=dict(type="bool", default=False),
    playbook=dict(type="str", default=""),
)


def this_run():
    """The ansible-playbook process of this run: an action plugin runs in a worker forked from it."""
    return {"controller": socket.gethostname(), "pid": os.getppid(), "user": getpass.getuser()}


def run_is_alive(holder, here):
    """Whether the run holding the lock still runs: only known for a run on this controller."""
    if holder.get("controller") != here["controller"]:
        return None
    try:
        with open("/proc/%d/cmdline" % int(holder["pid"]), "rb") as handle:
            return b"ansible" in handle.read()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def holder_text(holder):
    return "%s@%s (ansible-playbook pid %s, %s) since %s" % (
        holder.get("user"), holder.get("controller"), holder.get("pid"), holder.get("playbook") or "a playbook",
        time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(holder.get("started", 0))))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        path, here = args["path"], this_run()
        read = self._execute_module("ansible.builtin.slurp", module_args={"src": path}, task_vars=task_vars)
        holder = None
        if not read.get("failed"):
            try:
                holder = json.loads(base64.b64decode(read["content"]))
            except ValueError:
                holder = None  # not a lock this collection wrote whole: replaced
        ours = bool(holder) and (holder.get("controller"), holder.get("pid")) == (here["controller"], here["pid"])
        if args["state"] == "released":
            if ours and not self._task.check_mode:
                self._execute_module("ansible.builtin.file", module_args={"path": path, "state": "absent"},
                                     task_vars=task_vars)
            # Bookkeeping of the run, not a change to the node: a rerun still reports changed=0.
            result.update(changed=False, released=ours)
            return result
        if ours:
            result.update(changed=False, holder=holder)
            return result
        alive = run_is_alive(holder, here) if holder else False
        if holder and alive is not False and not args["take_over"]:
            result.update(failed=True, holder=holder, msg=(
                "Another run holds the cluster's run lock: %s (%s on the head). Two runs at once would restart or "
                "stop each other's work. Wait for it to end. %s" % (
                    holder_text(holder), path,
                    "If that run is gone (killed, or its control node lost), rerun with -e llmops_run_lock_take_over=true "
                    "or remove %s." % path if alive is None else "")).strip())
            return result
        stale = holder_text(holder) if holder else ""
        mine = dict(here, started=int(time.time()), playbook=args["playbook"])
        if not self._task.check_mode:
            written = self._execute_module("llmops.inference.config_files", task_vars=task_vars, module_args={
                "directories": [{"path": os.path.dirname(path), "mode": "0700", "keep_existing": True}],
                "files": [{"path": path, "content": json.dumps(mine) + "\n", "mode": "0600"}]})
            if written.get("failed"):
                result.update(failed=True, msg="The run lock %s could not be written: %s" % (path, written.get("msg")))
                return result
        result.update(changed=False, holder=mine, took_over=stale,
                      msg="Took over the run lock of a run that is gone: %s." % stale if stale else "")
        return result
