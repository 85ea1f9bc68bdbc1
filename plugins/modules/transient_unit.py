#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: transient_unit
short_description: Run a command as a transient systemd unit, or attach to it while it runs
version_added: 0.1.0
description:
  - Starts O(command) with C(systemd-run) as the unit O(name), so it outlives the connection
    that started it (a long download survives a lost SSH session).
  - With O(state=started), a unit still running is left alone and reported as C(attached) (a
    rerun follows the download already under way instead of starting a second one); a finished
    or failed one is cleared (C(reset-failed)) and started again.
  - With O(state=restarted), a running unit is stopped first, so the command always starts fresh.
  - O(environment) (it may hold a token) is written to a file only root can read, read by
    systemd at the unit's start, and removed before the module returns; it is never on a
    command line or in the result.
author:
  - llmops.inference maintainers (@llmops)
options:
  name:
    description: The unit's name, without C(.service).
    type: str
    required: true
  command:
    description: The command and its arguments, as a list (no shell).
    type: list
    elements: str
    required: true
  state:
    description: C(started) attaches to a running unit; C(restarted) always starts it fresh.
    type: str
    choices: [started, restarted]
    default: started
  environment:
    description: Environment of the command; secret values are fine (see the description).
    type: dict
    default: {}
  properties:
    description: Unit properties for C(systemd-run --property), e.g. C(RuntimeMaxSec).
    type: dict
    default: {}
  remain_after_exit:
    description: Keep the unit (and its result) after the command ends, for a later status check.
    type: bool
    default: false
  runtime_dir:
    description: Folder (created 0700) where the environment file lives for the moment of the start.
    type: path
    default: /run/llmops
attributes:
  check_mode:
    description: Reports whether the unit would be started (or is attached to), and starts nothing.
    support: full
  diff_mode:
    description: Nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: Download in the background, or follow the download already running
  llmops.inference.transient_unit:
    name: llmops-weights-fetch
    command: [/opt/modelscope/bin/modelscope, download, Qwen/Qwen3-8B, --local-dir, /data/qwen]
    environment:
      MODELSCOPE_API_TOKEN: "{{ vault_modelscope_token }}"
    remain_after_exit: true
  no_log: true
"""

RETURN = r"""
attached:
  description: True when the unit was already running and was left to go on.
  returned: always
  type: bool
cmd:
  description: The systemd-run command line (the environment is not on it).
  returned: when the unit was (or would be) started
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._units import (
    environment_file_text,
    parse_show,
    should_attach,
    systemd_run_argv,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            command=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["started", "restarted"], default="started"),
            environment=dict(type="dict", default={}, no_log=True),
            properties=dict(type="dict", default={}),
            remain_after_exit=dict(type="bool", default=False),
            runtime_dir=dict(type="path", default="/run/llmops"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    systemctl = module.get_bin_path("systemctl", required=True)
    systemd_run = module.get_bin_path("systemd-run", required=True)
    environ = {"LC_ALL": "C"}
    unit = params["name"]

    rc, out, _err = module.run_command([systemctl, "show", "--property", "ActiveState,SubState", unit],
                                       environ_update=environ)
    status = parse_show(out) if rc == 0 else {}
    if should_attach(params["state"], status):
        module.exit_json(changed=False, attached=True)
    try:
        env_text = environment_file_text(params["environment"]) if params["environment"] else ""
    except ValueError as error:
        module.fail_json(msg=str(error))

    env_file = os.path.join(params["runtime_dir"], unit + ".env") if env_text else ""
    argv = systemd_run_argv(systemd_run, unit, params["command"], params["properties"], params["remain_after_exit"],
                            env_file)
    if module.check_mode:
        module.exit_json(changed=True, attached=False, cmd=argv)

    # A unit of that name, running or failed, would make systemd-run refuse the name.
    module.run_command([systemctl, "stop", unit], environ_update=environ)
    module.run_command([systemctl, "reset-failed", unit], environ_update=environ)
    try:
        if env_text:
            os.makedirs(params["runtime_dir"], mode=0o700, exist_ok=True)
            handle, written = tempfile.mkstemp(dir=params["runtime_dir"], prefix=unit, suffix=".env")
            with os.fdopen(handle, "w") as stream:  # mkstemp makes it 0600
                stream.write(env_text)
            os.replace(written, env_file)
        rc, out, err = module.run_command(argv, environ_update=environ)
    finally:
        if env_file and os.path.exists(env_file):
            os.unlink(env_file)
    if rc != 0:
        module.fail_json(msg="systemd-run could not start %s" % unit, cmd=argv, rc=rc, stdout=out, stderr=err)
    module.exit_json(changed=True, attached=False, cmd=argv)


if __name__ == "__main__":
    main()
