"""The cluster_plan action reads every node's facts in rank order, the head first."""

from __future__ import annotations

from ansible_collections.llmops.inference.plugins.action.cluster_plan import cluster_nodes


def test_each_nodes_facts_are_read_in_rank_order():
    hostvars = {
        # The module sets it as a fact: read from ansible_facts, not as a top-level variable.
        "head": {"ansible_facts": {"llmops_accelerators": {"vendor": "nvidia", "count": 8, "erdma_nic_count": 2,
                                                           "vcpus": 96}},
                 "llmops_private_address": "10.0.0.11"},
        "w1": {"ansible_facts": {}},
    }
    assert cluster_nodes(["head", "w1"], hostvars) == [
        {"host": "head", "address": "10.0.0.11", "vendor": "nvidia", "count": 8, "erdma_nics": 2, "vcpus": 96},
        {"host": "w1", "address": "", "vendor": "cpu", "count": 0, "erdma_nics": 0, "vcpus": 1},
    ]
