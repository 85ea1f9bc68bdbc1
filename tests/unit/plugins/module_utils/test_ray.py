"""Ray membership from real probe output captured on the molecule/modules cluster (Ray 2.60.0)."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._ray import parse_probe_output, summarize_cluster
from conftest import fixture_text

HEAD, WORKER_1, WORKER_2 = "172.30.11.2", "172.30.11.3", "172.30.11.4"


def summary(name):
    return summarize_cluster(parse_probe_output(fixture_text("ray/%s.txt" % name)))


def ips(nodes):
    return [node["ip"] for node in nodes]


def test_healthy_cluster():
    cluster = summary("probe-3-nodes")
    assert cluster["alive_count"] == 3
    assert ips(cluster["nodes"]) == [HEAD, WORKER_1, WORKER_2]  # head first
    assert cluster["nodes"][0]["is_head"] and cluster["head_ip"] == HEAD
    assert cluster["lost_nodes"] == [] and cluster["unresponsive_nodes"] == []
    assert cluster["resources_total"]["CPU"] == 3.0
    assert cluster["resources_total"]["vacc"] == 4.0  # custom accelerator resource on worker 2
    assert not any(key.startswith("node:") for key in cluster["resources_total"])
    assert (cluster["ray_versions"], cluster["python_versions"]) == (["2.60.0"], ["3.11.2"])
    assert cluster["version_mismatch"] is False


def test_worker_killed_seconds_ago_is_not_counted_although_ray_says_alive():
    cluster = summary("probe-worker-stopping")
    raw = parse_probe_output(fixture_text("ray/probe-worker-stopping.txt"))
    assert all(node["Alive"] for node in raw["nodes"])  # what Ray itself claims
    assert cluster["alive_count"] == 2
    assert ips(cluster["unresponsive_nodes"]) == [WORKER_2] == ips(cluster["lost_nodes"])
    assert "not schedulable" in cluster["unresponsive_nodes"][0]["version_error"]


def test_worker_marked_dead_by_ray():
    cluster = summary("probe-worker-lost")
    assert cluster["alive_count"] == 2
    assert ips(cluster["lost_nodes"]) == [WORKER_2]
    assert "vacc" not in cluster["resources_total"]


def test_rejoined_worker_is_not_reported_lost():
    cluster = summary("probe-worker-rejoined")
    raw = parse_probe_output(fixture_text("ray/probe-worker-rejoined.txt"))
    assert sum(1 for node in raw["nodes"] if node["NodeManagerAddress"] == WORKER_2) == 3
    assert cluster["alive_count"] == 3 and cluster["lost_nodes"] == []


def test_lost_again_after_rejoining_is_reported_once():
    cluster = summary("probe-worker-stopped-again")
    assert cluster["alive_count"] == 2
    assert ips(cluster["lost_nodes"]) == [WORKER_2]


def test_version_mismatch_detected():
    report = parse_probe_output(fixture_text("ray/probe-3-nodes.txt"))
    worker = next(node for node in report["nodes"] if node["NodeManagerAddress"] == WORKER_1)
    report["versions"][worker["NodeID"]] = {"ray": "2.59.0", "python": "3.12.3"}
    cluster = summarize_cluster(report)
    assert cluster["version_mismatch"] is True
    assert cluster["ray_versions"] == ["2.59.0", "2.60.0"]


def test_probe_output_among_ray_chatter():
    noise = "2026-11-21 10:50:01,123\tINFO worker.py:1 -- Connecting to existing Ray cluster\n"
    assert parse_probe_output(noise + 'LLMOPS_RAY_PROBE {"error": "x"}\n') == {"error": "x"}
    with pytest.raises(ValueError, match="no report"):
        parse_probe_output(noise)
