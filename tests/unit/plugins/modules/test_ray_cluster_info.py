"""ray_cluster_info with the probe's command patched: exact argv, waiting and failure messages."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.inference.plugins.module_utils._ray import PROBE_SCRIPT
from ansible_collections.llmops.inference.plugins.modules import ray_cluster_info
from conftest import fixture_text


@pytest.fixture
def probes(monkeypatch):
    state = {"answers": [], "calls": []}

    def run_command(self, args, environ_update=None, **_kwargs):
        state["calls"].append(list(args))
        answer = state["answers"].pop(0) if len(state["answers"]) > 1 else state["answers"][0]
        return 0, answer, ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    return state


def test_runs_inside_the_named_container(probes, run_module):
    probes["answers"] = [fixture_text("ray/probe-3-nodes.txt")]
    result, failed = run_module(ray_cluster_info.main, {"container": "vllm-serve", "expected_nodes": 3})
    assert not failed and result["changed"] is False and result["alive_count"] == 3
    argv = probes["calls"][0]
    assert argv[:5] == ["/usr/bin/docker", "exec", "vllm-serve", "python3", "-c"]
    assert argv[5] == PROBE_SCRIPT
    assert result["cmd"][5] == "<probe script>"


def test_waits_until_the_expected_nodes_joined(probes, run_module):
    probes["answers"] = [fixture_text("ray/probe-worker-lost.txt"), fixture_text("ray/probe-3-nodes.txt")]
    result, failed = run_module(
        ray_cluster_info.main, {"python": "/opt/ray/bin/python", "expected_nodes": 3, "poll_interval": 0.01}
    )
    assert not failed and result["probes"] == 2
    assert probes["calls"][0][0] == "/opt/ray/bin/python"


def test_missing_node_fails_naming_alive_and_lost(probes, run_module):
    probes["answers"] = [fixture_text("ray/probe-worker-lost.txt")]
    result, failed = run_module(
        ray_cluster_info.main, {"expected_nodes": 3, "timeout": 0, "poll_interval": 0.01}
    )
    assert failed
    assert result["msg"] == (
        "Ray cluster has 2 alive node(s) ['172.30.11.2', '172.30.11.3'], expected 3 after 0s; lost: ['172.30.11.4']"
    )


def test_unreachable_cluster_is_a_clear_error(probes, run_module):
    probes["answers"] = ['LLMOPS_RAY_PROBE {"error": "cannot connect to Ray at auto: no cluster"}\n']
    result, failed = run_module(ray_cluster_info.main, {"timeout": 0})
    assert failed and result["msg"] == "cannot read the Ray cluster: cannot connect to Ray at auto: no cluster"


def test_version_mismatch_fails_by_default(probes, run_module, monkeypatch):
    from ansible_collections.llmops.inference.plugins.modules import ray_cluster_info as module

    def summarize_with_mismatch(report):
        summary = original(report)
        summary.update(version_mismatch=True, ray_versions=["2.59.0", "2.60.0"])
        return summary

    original = module.summarize_cluster
    monkeypatch.setattr(module, "summarize_cluster", summarize_with_mismatch)
    probes["answers"] = [fixture_text("ray/probe-3-nodes.txt")]
    result, failed = run_module(module.main, {})
    assert failed and "disagree on versions: ray ['2.59.0', '2.60.0']" in result["msg"]
    result, failed = run_module(module.main, {"fail_on_version_mismatch": False})
    assert not failed
