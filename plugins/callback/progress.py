# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: progress
type: aggregate
short_description: Print the progress line of long-running polls (weights fetches, readiness)
version_added: 0.1.0
description:
  - Tasks that wait in an C(until) loop - such as M(llmops.inference.fetch_progress) - return a
    C(progress) line at each poll. This callback prints it after the seconds elapsed since the
    task began, so a fetch that takes an hour shows bytes, total, rate and time left, and a
    readiness wait shows which condition is still unmet, instead of only C(RETRYING) lines.
  - Enable it with C(callbacks_enabled = llmops.inference.progress) in C(ansible.cfg) (the
    repository's C(ansible.cfg) does).
requirements:
  - enabled in C(callbacks_enabled)
"""

import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmops.inference.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._task_started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_started[task._uuid] = time.time()

    def v2_runner_retry(self, result):
        line = result._result.get("progress")
        if isinstance(line, str) and line:
            started = self._task_started.get(result._task._uuid, time.time())
            self._display.display("  [%s] %ds: %s" % (result._host.get_name(), time.time() - started, line))
