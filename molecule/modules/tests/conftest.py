"""Run a collection module on a test host and get its whole result, `failed` included.

testinfra's host.ansible() reads `ansible --tree` output, which drops the `failed` key, so a
test could not tell a failure from a success; this runs the ad-hoc command with the json
callback instead.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest


def run_module(host_name, module, args="", check=False):
    command = ["ansible", "-i", os.environ["MOLECULE_INVENTORY_FILE"], host_name, "-m", module, "-a", args]
    if check:
        command.append("--check")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        document = json.loads(completed.stdout)
    except ValueError:
        raise AssertionError("ansible printed no JSON (rc %s): %s %s" % (completed.returncode, completed.stdout, completed.stderr))
    return document["plays"][0]["tasks"][0]["hosts"][host_name]


@pytest.fixture
def module(host):
    """module(name, args, check=False) -> result dict of running it on this test's host."""
    name = host.backend.get_hostname()
    return lambda module_name, args="", check=False: run_module(name, module_name, args, check)
