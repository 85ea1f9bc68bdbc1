"""ray_cluster_info against the real Ray cluster, endpoint_ready against real HTTP servers.

Run on the head only; the worker whose Ray node is stopped is reached as a second host.
"""

from __future__ import annotations

import os
import time

import testinfra

testinfra_hosts = ["llmops-modules-head-1"]
RAY_PYTHON = "python=/opt/ray/bin/python"
API_KEY = "molecule-modules-key"


def node(name):
    return testinfra.get_host("ansible://%s" % name, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def cluster(module, extra=""):
    return module("llmops.inference.ray_cluster_info", "%s %s" % (RAY_PYTHON, extra))


def test_ray_counts_real_nodes(host, module):
    report = cluster(module, "expected_nodes=3 timeout=60")
    assert not report.get("failed"), report
    assert report["alive_count"] == 3 and report["changed"] is False
    addresses = {item["ip"] for item in report["nodes"]}
    for name in ("llmops-modules-head-1", "llmops-modules-worker-1", "llmops-modules-worker-2"):
        address = node(name).interface("eth0").addresses[0]
        assert address in addresses
    assert report["head_ip"] == host.interface("eth0").addresses[0]
    assert report["resources_total"]["CPU"] == 3.0 and report["resources_total"]["vacc"] == 4.0
    assert report["ray_versions"] == ["2.60.0"] and len(report["python_versions"]) == 1


def test_membership_alone_is_read_from_the_gcs_with_the_same_nodes(host, module):
    with_versions = cluster(module, "expected_nodes=3 timeout=60")
    alone = cluster(module, "expected_nodes=3 timeout=60 check_versions=false")
    assert not alone.get("failed"), alone
    assert (with_versions["read_from"], alone["read_from"]) == ("driver", "gcs")
    assert alone["alive_count"] == 3 and alone["head_ip"] == with_versions["head_ip"]
    assert [item["ip"] for item in alone["nodes"]] == [item["ip"] for item in with_versions["nodes"]]
    assert alone["resources_total"] == with_versions["resources_total"]
    assert alone["ray_versions"] == [] and alone["version_mismatch"] is False


def test_ray_notices_a_lost_worker(module):
    worker = node("llmops-modules-worker-2")
    worker_ip = worker.interface("eth0").addresses[0]
    worker.run_expect([0], "systemctl stop ray-node")
    try:
        report = cluster(module)
        # The pinned version task fails at once, even while Ray still marks the node alive.
        assert report["alive_count"] == 2
        assert [item["ip"] for item in report["lost_nodes"]] == [worker_ip]
        failure = cluster(module, "expected_nodes=3 timeout=3 poll_interval=1")
        assert failure["failed"] is True
        assert "expected 3" in failure["msg"] and worker_ip in failure["msg"]
    finally:
        worker.run_expect([0], "systemctl start ray-node")
    assert cluster(module, "expected_nodes=3 timeout=60")["alive_count"] == 3


def test_readiness_returns_within_one_poll_interval_of_real_readiness(host, module):
    host.run_expect([0], "rm -f /run/fake-ready")
    host.run_expect(
        [0],
        "systemd-run --unit fake-openai-delayed --collect /usr/bin/python3 "
        "/opt/llmops-tests/fixtures/fake_openai_server.py --port 18000 --model tiny-qwen "
        "--api-key %s --ready-after 6 --ready-file /run/fake-ready" % API_KEY,
    )
    try:
        started = time.time()
        result = module(
            "llmops.inference.endpoint_ready",
            "url=http://127.0.0.1:18000 model=tiny-qwen api_key=%s timeout=60 poll_interval=1" % API_KEY,
        )
        really_ready_at = float(host.file("/run/fake-ready").content_string)
    finally:
        host.run("systemctl stop fake-openai-delayed")
    assert result["ready"] is True and result["polls"] > 1
    assert 0 <= result["ready_at"] - really_ready_at <= 1.0 + 0.3
    assert result["time_to_ready"] >= 4 and time.time() - started < 30
    assert result["models"] == ["tiny-qwen"] and result["max_model_len"] == 512


def test_readiness_fails_when_the_model_is_never_listed(module):
    result = module(
        "llmops.inference.endpoint_ready",
        "url=http://127.0.0.1:18002 model=tiny-qwen api_key=%s timeout=3 poll_interval=1" % API_KEY,
    )
    assert result["failed"] is True
    assert result["failed_condition"] == "model_listed"
    assert "/v1/models lists nothing" in result["msg"]
    assert API_KEY not in result["msg"]
