"""The fabric check's parsing of real NCCL_DEBUG=INFO logs (tests/unit/fixtures/nccl/, each
from a public issue, see SOURCES.md) and its verdict over the ranks' reports."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.llmops.inference.plugins.module_utils import _fabric as fabric

NCCL = Path(__file__).resolve().parents[2] / "fixtures" / "nccl"


def log(name):
    return (NCCL / name).read_text()


def test_an_infiniband_run_reports_net_ib_between_the_nodes_and_p2p_inside_one():
    parsed = fabric.parse_nccl_log(log("multi_node_ib.log"))
    transports = {connection["transport"] for connection in parsed["connections"]}
    assert transports == {"NET/IB", "P2P"}
    first = parsed["connections"][0]
    assert first == {"channel": 7, "src": 0, "dst": 2, "direction": "receive", "via": "NET/IB/3/GDRDMA",
                     "transport": "NET/IB"}
    # Rank 3 (second node) sends to rank 1 and receives from it over IB; rank 2 receives from 0.
    assert fabric.peer_transports(parsed["connections"]) == {0: ["NET/IB"], 1: ["NET/IB"]}


def test_an_old_socket_run_is_read_from_its_ring_lines():
    parsed = fabric.parse_nccl_log(log("multi_node_socket.log"))
    assert parsed["networks"] == []  # NCCL 2.4 printed no "Using network" line
    assert parsed["connections"]
    assert {connection["transport"] for connection in parsed["connections"]} == {"NET/Socket"}
    assert any(c["src"] == 43 and c["dst"] == 44 and c["direction"] == "receive" for c in parsed["connections"])


def test_a_fallback_to_sockets_keeps_its_warnings():
    parsed = fabric.parse_nccl_log(log("multi_node_socket_warn.log"))
    assert {connection["transport"] for connection in parsed["connections"] if connection["transport"].startswith("NET")} == {
        "NET/Socket"}
    assert parsed["warnings"] and all(warning.startswith("NCCL WARN") for warning in parsed["warnings"])
    # Rank 8 (second node) receives from and sends to rank 0 over sockets.
    assert fabric.peer_transports(parsed["connections"]) == {0: ["NET/Socket"]}


def test_the_chosen_network_is_read_from_the_init_lines():
    parsed = fabric.parse_nccl_log(log("multi_node_roce_init.log"))
    assert parsed["networks"] == ["IB"]
    assert parsed["connections"] == []


def test_plan_lines_are_not_connections():
    text = ("h:1:2 [0] NCCL INFO Ring 00 : 0 -> 1 -> 0\n"
            "h:1:2 [0] NCCL INFO Channel 00/02 :    0   1\n"
            "h:1:2 [0] NCCL INFO Channel 01 : 2[c7000] -> 0[87000] [receive] via NET/IB/5/GDRDMA\n")
    assert [c["via"] for c in fabric.parse_nccl_log(text)["connections"]] == ["NET/IB/5/GDRDMA"]


def gloo_rank(rank, ip, **extra):
    return dict({"rank": rank, "ip": ip, "hostname": "n%d" % rank, "backend": "gloo", "sum": 2.0, "seconds": 0.004,
                 "nccl_log": ""}, **extra)


def test_a_gloo_all_reduce_across_two_nodes_passes_with_its_bandwidth():
    report = {"nodes": ["10.0.0.11", "10.0.0.12"], "ranks": [gloo_rank(0, "10.0.0.11"), gloo_rank(1, "10.0.0.12")]}
    result = fabric.summarize(report, 2, False, 1 << 20)
    assert result["problems"] == []
    assert result["world_size"] == 2
    # 2 (n - 1) / n x 1 MiB x 8 bits in 4 ms.
    assert result["ranks"][0]["bus_gbps"] == round(1.0 * (1 << 20) * 8 / 0.004 / 1e9, 3)


def test_a_missing_node_a_failed_rank_and_a_wrong_sum_are_named():
    report = {"nodes": ["10.0.0.11", "10.0.0.12"],
              "ranks": [gloo_rank(0, "10.0.0.11", sum=3.0), gloo_rank(1, "10.0.0.12", error="RuntimeError: timeout")]}
    problems = fabric.summarize(report, 3, False, 1 << 20)["problems"]
    assert problems == [
        "the collective ran on 2 node(s) (10.0.0.11, 10.0.0.12), expected 3",
        "rank 0 on 10.0.0.11 summed 3.0, expected 2",
        "rank 1 on 10.0.0.12 failed: RuntimeError: timeout",
    ]


def nccl_report(log_text):
    return {"nodes": ["10.0.0.11", "10.0.0.12"],
            "ranks": [dict(gloo_rank(rank, "10.0.0.1%d" % (rank + 1)), backend="nccl", nccl_log=log_text)
                      for rank in (0, 1)]}


def test_nccl_over_sockets_fails_where_rdma_nics_exist():
    result = fabric.summarize(nccl_report(log("multi_node_socket_warn.log")), 2, True, 1 << 20)
    assert result["problems"][0].startswith("rank 0 on 10.0.0.11 reached rank(s) ")
    assert "over NET/Socket although the node has RDMA NICs" in result["problems"][0]
    # Without RDMA NICs sockets are what NCCL should use.
    assert fabric.summarize(nccl_report(log("multi_node_socket_warn.log")), 2, False, 1 << 20)["problems"] == []


def test_nccl_over_infiniband_passes_and_reports_each_peer():
    result = fabric.summarize(nccl_report(log("multi_node_ib.log")), 2, True, 1 << 20)
    assert result["problems"] == []
    assert result["ranks"][0]["peers"] == {"0": ["NET/IB"], "1": ["NET/IB"]}
    # Every channel of that capture ends in /GDRDMA: GPUDirect RDMA to each peer, nothing to say.
    assert result["ranks"][0]["gpudirect"] == {"0": True, "1": True}
    assert result["notices"] == []


def test_rdma_without_gpudirect_is_reported_per_peer():
    staged = log("multi_node_ib.log").replace("/GDRDMA", "")
    result = fabric.summarize(nccl_report(staged), 2, True, 1 << 20)
    assert result["problems"] == []
    assert result["ranks"][0]["gpudirect"] == {"0": False, "1": False}
    assert len(result["notices"]) == len(result["ranks"]) == 2  # one per rank, naming its peers
    assert "rank 0 on " in result["notices"][0] and "nvidia-peermem" in result["notices"][0]
    assert "reaches rank(s) 0, 1 over RDMA without GPUDirect RDMA" in result["notices"][0]


def test_the_report_is_found_among_rays_own_output():
    stdout = "2026-12-01 INFO worker.py -- Connecting\n" + fabric.REPORT_MARKER + json.dumps({"ranks": []}) + "\n"
    assert fabric.parse_report(stdout) == {"ranks": []}
