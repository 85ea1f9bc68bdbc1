"""image_probe in-process: the docker CLI's answers queued, the cache on disk."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.inference.plugins.modules import image_probe

ANSWER = {"python": "3.12.3", "vllm": "0.32.0", "ray": None, "torch": "2.10.0", "torch_cuda": "13.0", "erdma_provider": False}


@pytest.fixture
def docker(monkeypatch):
    state = {"answers": [], "calls": [], "binaries": {"docker": "/usr/bin/docker", "timeout": "/usr/bin/timeout"}}

    def run_command(self, args, **_):
        state["calls"].append(list(args))
        return state["answers"].pop(0)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: state["binaries"].get(name))
    return state


def test_the_probe_runs_once_per_image_id(tmp_path, run_module, docker):
    docker["answers"] = [(0, "sha256:abc 3077000000\n", ""), (0, "some warning\n" + json.dumps(ANSWER) + "\n", "")]
    args = {"image": "vllm/vllm-openai:v0.32.0", "cache_dir": str(tmp_path / "images")}
    result, failed = run_module(image_probe.main, args)
    assert not failed and result["changed"] is False
    assert (result["present"], result["image_id"], result["size"], result["probe"], result["cached"]) == (True, "sha256:abc", 3077000000, ANSWER, False)
    assert docker["calls"][1][:4] == ["/usr/bin/timeout", "--kill-after=5", "120", "/usr/bin/docker"]
    assert docker["calls"][1][4:10] == ["run", "--rm", "--network", "none", "--entrypoint", "python3"]
    docker["answers"] = [(0, "sha256:abc 3077000000\n", "")]
    result, _failed = run_module(image_probe.main, args)
    assert result["cached"] is True and result["probe"] == ANSWER and len(docker["calls"]) == 3


def test_no_image_or_no_docker_runs_nothing(run_module, docker):
    docker["answers"] = [(1, "", "Error: No such image")]
    result, _failed = run_module(image_probe.main, {"image": "x:1"})
    assert result["present"] is False and len(docker["calls"]) == 1
    docker["binaries"] = {}
    result, _failed = run_module(image_probe.main, {"image": "x:1"})
    assert result["present"] is False and len(docker["calls"]) == 1


def test_a_failed_probe_reports_its_exit_and_output(run_module, docker):
    docker["answers"] = [(0, "sha256:abc 3077000000\n", ""), (127, "", "exec: \"python3\": executable file not found in $PATH\n")]
    result, failed = run_module(image_probe.main, {"image": "haproxy:3.0.5"})
    assert not failed and result["error"].startswith("exit 127: exec: \"python3\"") and "probe" not in result


def test_a_broken_cache_file_is_probed_again(tmp_path, run_module, docker):
    folder = tmp_path / "images"
    docker["answers"] = [(0, "sha256:abc 3077000000\n", ""), (0, json.dumps(ANSWER) + "\n", "")]
    run_module(image_probe.main, {"image": "x:1", "cache_dir": str(folder)})
    [cache] = list(folder.iterdir())
    assert cache.name.startswith("sha256-abc-") and json.loads(cache.read_text()) == ANSWER
    cache.write_text('{"python": ')  # cut off
    docker["answers"] = [(0, "sha256:abc 3077000000\n", ""), (0, json.dumps(ANSWER) + "\n", "")]
    result, failed = run_module(image_probe.main, {"image": "x:1", "cache_dir": str(folder)})
    assert not failed and result["cached"] is False and result["probe"] == ANSWER
