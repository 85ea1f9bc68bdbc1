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


# Creates the lock only when absent (the shell's noclobber opens it O_EXCL): of two runs that
# start at the same moment, one creates it and the other fails and reads who holds it. The data
# root it may create first gets the node's usual mode (the host phase keeps a folder's mode);
# only the lock itself is 0600.
CREATE = 'mkdir -p "$(dirname "$1")" && umask 077 && set -C && cat > "$1"'


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def read_lock(self, path, task_vars):
        """(whether a lock file is there, the run it names or None when it is not one this
        collection wrote whole)."""
        read = self._execute_module("ansible.builtin.slurp", module_args={"src": path}, task_vars=task_vars)
        if read.get("failed"):
            return False, None
        try:
            holder = json.loads(base64.b64decode(read["content"]))
        except ValueError:
            return True, None
        return True, holder if isinstance(holder, dict) else None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        path, here = args["path"], this_run()
        present, holder = self.read_lock(path, task_vars)
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
            return self.held_by_another(result, holder, path, alive)
        stale = holder_text(holder) if holder else ""
        mine = dict(here, started=int(time.time()), playbook=args["playbook"])
        if not self._task.check_mode:
            if present:
                # A stale or unreadable lock: removed first, so the exclusive create below decides.
                self._execute_module("ansible.builtin.file", module_args={"path": path, "state": "absent"},
                                     task_vars=task_vars)
            created = self._execute_module("ansible.legacy.command", task_vars=task_vars, module_args={
                "argv": ["sh", "-c", CREATE, "run_lock", path], "stdin": json.dumps(mine), "stdin_add_newline": True})
            if created.get("rc") != 0:
                _present, other = self.read_lock(path, task_vars)
                if other:  # another run took it at the same moment
                    return self.held_by_another(result, other, path, run_is_alive(other, here))
                result.update(failed=True, msg="The run lock %s could not be written: %s"
                              % (path, (created.get("stderr") or created.get("msg") or "").strip()))
                return result
        result.update(changed=False, holder=mine, took_over=stale,
                      msg="Took over the run lock of a run that is gone: %s." % stale if stale else "")
        return result

    @staticmethod
    def held_by_another(result, holder, path, alive):
        result.update(failed=True, holder=holder, msg=(
            "Another run holds the cluster's run lock: %s (%s on the head). Two runs at once would restart or "
            "stop each other's work. Wait for it to end. %s" % (
                holder_text(holder), path,
                "If that run is gone (killed, or its control node lost), rerun with -e llmops_run_lock_take_over=true "
                "or remove %s." % path if alive is None else "")).strip())
        return result
