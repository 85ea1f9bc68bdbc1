"""Shared helpers: import the collection from the checkout, run modules in-process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# collections/ansible_collections/llmops/inference links back to the repository root.
sys.path.insert(0, str(REPO_ROOT / "collections"))
# Shared test fixtures (simulated PCI trees, the fake OpenAI server).
sys.path.insert(0, str(REPO_ROOT / "tests" / "fixtures"))


class ModuleExit(Exception):
    """Raised in place of exit_json / fail_json so a test can read the result."""

    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


@pytest.fixture
def run_module(monkeypatch):
    """run_module(main, args) -> (result, failed), with exit_json / fail_json intercepted."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **result):
        raise ModuleExit(result, failed=False)

    def fail_json(self, msg, **result):
        raise ModuleExit(dict(result, msg=msg), failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(main, args):
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as outcome:
                main()
        return outcome.value.result, outcome.value.failed

    return run


def fixture_text(relative):
    return (FIXTURES / relative).read_text()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port, what):
    """Return once something listens on 127.0.0.1:port (about 5 s at most)."""
    for _attempt in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("%s never listened on port %d" % (what, port))


@pytest.fixture
def spawn():
    """spawn(argv, port): start a server process, wait until it listens; stopped at teardown."""
    processes = []

    def start(argv, port):
        processes.append(subprocess.Popen(argv))
        wait_listening(port, argv)

    yield start
    for process in processes:
        process.terminate()
        process.wait()


@pytest.fixture
def docker(tmp_path):
    """The Docker Engine API stood in for on a unix socket (tests/fixtures/fake_docker_api.py)."""
    from fake_docker_api import FakeDocker

    fake = FakeDocker(tmp_path / "docker.sock")
    yield fake
    fake.close()
