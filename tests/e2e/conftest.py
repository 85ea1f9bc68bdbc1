"""The sandbox deployed by `make sandbox` (sandbox/up.sh), seen from the machine."""

from __future__ import annotations

import itertools
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


def serving_image():
    """The image the sandbox's nodes run (the derived image the image phase built): its name."""
    return docker_inspect(HEAD + "-ray")["Config"]["Image"]


def failure_evidence(completed):
    """What a failed playbook run shows in the test's failure: the recap, stderr's end, then
    each failed task and its message last (CI shows a log's last lines, and a run's own last
    lines are only the timing summary)."""
    lines = completed.stdout.splitlines()
    failed = [index for index, line in enumerate(lines) if re.match(r"(fatal|failed): \[", line)]
    blocks = []
    for index in failed[:4]:
        task = next((lines[at] for at in range(index, -1, -1) if lines[at].startswith("TASK [")), "")
        # The YAML result is the fatal line and its indented lines.
        message = [lines[index]] + list(itertools.takewhile(lambda line: line[:1] in (" ", ""), lines[index + 1:index + 16]))
        blocks.append("\n".join([task] + message)[:2000])
    recap = completed.stdout[completed.stdout.find("PLAY RECAP"):].split("\n\n")[0] if "PLAY RECAP" in completed.stdout else ""
    return "\n".join([recap, completed.stderr[-1500:], "rc=%d; failed tasks:" % completed.returncode,
                      "\n---\n".join(blocks) or completed.stdout[-3000:]])


def run_playbook(playbook, *extra, expect_failure=False, inventory="inventories/sandbox"):
    """Run a playbook against the sandbox; return (output, {host: recap counts})."""
    completed = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/ansible-playbook"), playbook, "-i", str(inventory), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    if (completed.returncode != 0) is not expect_failure:
        pytest.fail(failure_evidence(completed), pytrace=False)
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


@pytest.fixture
def api_key():
    """The key the endpoint accepts now (a test rotates it): the key file, 0600."""
    assert KEY_FILE.stat().st_mode & 0o777 == 0o600
    return KEY_FILE.read_text().strip()
