"""fabric_check with docker exec patched: the exact argv, and pass/fail on the script's report."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.inference.plugins.module_utils._fabric import FABRIC_SCRIPT, REPORT_MARKER
from ansible_collections.llmops.inference.plugins.modules import fabric_check


@pytest.fixture
def docker_exec(monkeypatch):
    state = {"answer": "", "calls": []}

    def run_command(self, args, **_kwargs):
        state["calls"].append(list(args))
        return 0, state["answer"], ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    return state


def ranks(sums):
    return [{"rank": rank, "ip": "10.0.0.1%d" % rank, "backend": "gloo", "sum": value, "seconds": 0.01, "nccl_log": ""}
            for rank, value in enumerate(sums)]


def test_runs_the_script_inside_the_heads_ray_container(docker_exec, run_module):
    docker_exec["answer"] = "noise\n" + REPORT_MARKER + json.dumps({"nodes": ["a", "b"], "ranks": ranks([2.0, 2.0])})
    result, failed = run_module(fabric_check.main, {"container": "ray-node", "expected_nodes": 2, "bytes": 1024})
    assert not failed and result["world_size"] == 2 and result["problems"] == [] and not result["changed"]
    argv = docker_exec["calls"][0]
    assert argv[:6] == ["/usr/bin/docker", "exec", "ray-node", "python3", "-c", FABRIC_SCRIPT]
    assert json.loads(argv[6]) == {"backend": "gloo", "bytes": 1024, "timeout": 300}


def test_a_wrong_sum_fails_naming_the_rank(docker_exec, run_module):
    docker_exec["answer"] = REPORT_MARKER + json.dumps({"nodes": ["a", "b"], "ranks": ranks([2.0, 1.0])})
    result, failed = run_module(fabric_check.main, {"container": "ray-node", "expected_nodes": 2})
    assert failed and result["msg"] == "the fabric check failed: rank 1 on 10.0.0.11 summed 1.0, expected 2"


def test_no_report_is_a_clear_error(docker_exec, run_module):
    docker_exec["answer"] = "Error: No such container: ray-node"
    result, failed = run_module(fabric_check.main, {"container": "ray-node", "expected_nodes": 2})
    assert failed and result["msg"].startswith("the fabric check did not run in ray-node (rc=0): the fabric check printed no report")


def test_gpus_held_by_a_serving_job_skip_the_check_and_say_why(docker_exec, run_module):
    docker_exec["answer"] = REPORT_MARKER + json.dumps({"nodes": ["a", "b"], "ranks": [],
                                                        "busy": "0.0 of 2 GPU(s) free in the Ray cluster, one per node needed"})
    result, failed = run_module(fabric_check.main, {"container": "ray-node", "expected_nodes": 2, "backend": "nccl"})
    assert not failed and result["problems"] == [] and result["world_size"] == 0
    assert result["msg"] == "not run: 0.0 of 2 GPU(s) free in the Ray cluster, one per node needed (a serving job holds them)"
