"""The sandbox deployed by `make sandbox` (sandbox/up.sh), seen from the machine."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NETWORK = "llmops-sandbox"
HEAD = "llmops-sandbox-head"
MODEL = "tiny-qwen"
KEY_FILE = Path("/var/tmp/llmops-sandbox") / HEAD / "secrets" / "vllm-api-key"


def docker_inspect(name):
    completed = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)[0]


def run_playbook(playbook, *extra, expect_failure=False):
    """Run a playbook against the sandbox; return (output, {host: recap counts})."""
    completed = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/ansible-playbook"), playbook, "-i", "inventories/sandbox", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert (completed.returncode != 0) is expect_failure, completed.stdout[-3000:] + completed.stderr[-2000:]
    recap = {
        match["host"]: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match["counts"])}
        for match in re.finditer(r"^(?P<host>\S+)\s+:\s+(?P<counts>ok=.*)$", completed.stdout, re.MULTILINE)
    }
    return completed.stdout + completed.stderr, recap


def deploy(*extra, expect_failure=False):
    """Run the user's command against the sandbox; return (output, {host: recap counts})."""
    return run_playbook("deploy.yml", *extra, expect_failure=expect_failure)


@pytest.fixture(scope="session")
def base_url():
    address = docker_inspect(HEAD)["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    return "http://%s:8000/v1" % address


@pytest.fixture(scope="session")
def api_key():
    assert KEY_FILE.stat().st_mode & 0o777 == 0o600
    return KEY_FILE.read_text().strip()
