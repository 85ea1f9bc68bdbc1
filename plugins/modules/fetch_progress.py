#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fetch_progress
short_description: Report how far a weights fetch running as a systemd unit has come
version_added: 0.1.0
description:
  - The weights role runs each download as a transient systemd unit, so it survives a lost
    control connection and a rerun attaches to it instead of starting a second download.
  - This module reads the unit's state and the bytes in the staging folder (partial files
    included) and returns progress - bytes, total, rate and time left - as numbers and as one
    line of text. Used in an C(until) loop; the collection's C(llmops.inference.progress)
    callback prints that line at each poll.
  - When the unit failed, returns RV(succeeded=false) and the last lines of its journal.
author:
  - llmops.inference maintainers (@llmops)
options:
  unit:
    description: Name of the systemd unit running the fetch.
    type: str
    required: true
  staging_dir:
    description: Folder the fetch writes into.
    type: path
    required: true
  total_bytes:
    description: Bytes the staging folder holds when the fetch is done.
    type: int
    required: true
  initial_bytes:
    description: Bytes that were already there when the fetch started (excluded from the rate).
    type: int
    default: 0
  label:
    description: What is being fetched, for the progress line.
    type: str
    default: weights
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Wait for the fetch, printing progress
  llmops.inference.fetch_progress:
    unit: llmops-weights-fetch
    staging_dir: /data/llmops/models/Qwen3-8B.revisions/master.staging
    total_bytes: "{{ listing.total_bytes }}"
  register: progress
  until: progress.finished
  retries: 8640
  delay: 10
"""

RETURN = r"""
finished:
  description: The unit is no longer running.
  returned: always
  type: bool
succeeded:
  description: The unit finished with exit status 0.
  returned: always
  type: bool
bytes_done:
  description: Bytes in the staging folder.
  returned: always
  type: int
total_bytes:
  description: O(total_bytes).
  returned: always
  type: int
rate_bytes_per_s:
  description: Average rate since the unit started.
  returned: always
  type: int
progress:
  description: One line for people, e.g. C(1.2 GiB of 16.0 GiB (7%), 110.3 MiB/s, about 2m 17s left).
  returned: always
  type: str
journal_tail:
  description: The unit's last journal lines.
  returned: when the unit failed
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._weights import human_bytes


def unit_properties(module, unit):
    names = ["LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ActiveEnterTimestampMonotonic"]
    command = ["systemctl", "show", unit] + ["--property=%s" % name for name in names]
    rc, out, err = module.run_command(command)
    if rc != 0:
        module.fail_json(msg="cannot read unit %s: %s" % (unit, err.strip() or out.strip()))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def bytes_in(folder):
    total = 0
    for parent, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass  # a file renamed while we walked
    return total


def duration(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return "%dh %02dm" % (seconds // 3600, seconds % 3600 // 60)
    return "%dm %02ds" % (seconds // 60, seconds % 60) if seconds >= 60 else "%ds" % seconds


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", required=True),
            staging_dir=dict(type="path", required=True),
            total_bytes=dict(type="int", required=True),
            initial_bytes=dict(type="int", default=0),
            label=dict(type="str", default="weights"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    state = unit_properties(module, params["unit"])
    running = state.get("ActiveState") in ("activating", "active", "reloading") and state.get("SubState") != "exited"
    succeeded = state.get("SubState") == "exited" and state.get("ExecMainStatus") == "0"
    done = bytes_in(params["staging_dir"]) if os.path.isdir(params["staging_dir"]) else 0
    started = int(state.get("ActiveEnterTimestampMonotonic") or 0) / 1e6
    elapsed = max(time.monotonic() - started, 0.001) if started else 0
    rate = int(max(done - params["initial_bytes"], 0) / elapsed) if elapsed else 0
    total = params["total_bytes"]
    line = "%s: %s of %s (%d%%)" % (params["label"], human_bytes(done), human_bytes(total), 100 * done // max(total, 1))
    if running and rate:
        line += ", %s/s, about %s left" % (human_bytes(rate), duration(max(total - done, 0) / rate))
    result = dict(changed=False, finished=not running, succeeded=succeeded, bytes_done=done, total_bytes=total,
                  rate_bytes_per_s=rate, progress=line, unit_state=state)
    if not running and not succeeded:
        _rc, journal, _err = module.run_command(["journalctl", "--unit", params["unit"], "--lines", "25", "--no-pager",
                                                 "--output", "cat"])
        result["journal_tail"] = journal.splitlines()[-25:]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
