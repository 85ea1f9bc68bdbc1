#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_lock
short_description: Hold the cluster's run lock, so two runs never work on one cluster at once
version_added: 0.4.0
description:
  - Runs on the control node (an action plugin) against the host it is delegated to (the head).
    C(state=held) writes O(path) (0600) naming this run - the control node, the
    ansible-playbook process, the user, the playbook and the start time - unless another run
    holds it; then it fails, naming that run.
  - A lock whose run was on this control node and whose process is gone (a run that was killed)
    is recognised and taken over, and the result says so. A lock of a run on another control
    node cannot be checked from here; O(take_over) takes it anyway.
  - C(state=released) removes the lock when this run holds it (every entry playbook ends so).
  - In check mode nothing is written; a lock another live run holds still stops the run.
  - Reports C(changed=false) - the lock is the run's bookkeeping, not a change to the host, so a
    rerun that changes nothing still reads changed=0.
author:
  - llmops.inference maintainers (@llmops)
options:
  path:
    description: The lock file on the host (C(llmops_data_root)/run.lock on the head).
    type: str
    required: true
  state:
    description: Take the lock (C(held)) or give it back (C(released)).
    type: str
    choices: [held, released]
    default: held
  take_over:
    description: Take a lock another run holds (C(llmops_run_lock_take_over)), for a run known to be gone.
    type: bool
    default: false
  playbook:
    description: The playbook this run runs, recorded in the lock for the message another run shows.
    type: str
    default: ""
attributes:
  check_mode:
    description: Writes nothing; still refuses a lock held by another live run.
    support: full
"""

EXAMPLES = r"""
- name: Take the cluster's run lock
  llmops.inference.run_lock:
    path: /var/lib/llmops-inference/run.lock
    playbook: deploy.yml
  delegate_to: "{{ groups['inference_head'] | first }}"
  run_once: true
"""

RETURN = r"""
holder:
  description: The run that holds the lock (controller, pid, user, started, playbook).
  returned: when state is held
  type: dict
took_over:
  description: The run whose stale lock this run took over (empty when none).
  returned: when state is held and the lock was taken
  type: str
released:
  description: Whether this run's lock was removed.
  returned: when state is released
  type: bool
"""
