"""The vllm_serve filters: which containers a run starts, and the recovery helpers (the plan and
the specs are tested in tests/unit/plugins/module_utils/test_plans.py)."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.llmops.inference.plugins.filter import serving
from ansible_collections.llmops.inference.plugins.module_utils import _serving


def test_evidence_shows_state_then_the_log_tail():
    problem = {"name": "s", "status": "restarting", "exit_code": 2, "restart_count": 3, "oom_killed": False,
               "error": "", "log_tail": ["vllm serve: error: unrecognized arguments: --bad"]}
    assert serving.container_evidence(problem) == [
        "s: restarting, exit code 2, 3 restart(s), OOM killed: no",
        "last 1 log lines of s:",
        "  | vllm serve: error: unrecognized arguments: --bad",
    ]
    running = dict(problem, status="running", log_tail=[])
    assert serving.container_evidence(running) == ["s: running, 3 restart(s), OOM killed: no"]


def test_stale_containers_are_picked_from_the_wait_results():
    results = [
        {"container_problem": {"name": "a", "stale_network": True, "reason": "its node restarted"}},
        {"container_problem": {"name": "b", "stale_network": False, "reason": "it is exited"}},
        {"ready": True},
    ]
    assert serving.stale_containers(results) == {"a": "its node restarted"}


def test_previous_specs_come_from_the_labels_sorted_by_name():
    containers = [
        {"Names": ["/b"], "Labels": {"org.llmops.spec": json.dumps({"name": "b", "port": 8101})}},
        {"Names": ["/balancer"], "Labels": {"org.llmops.spec-hash": "x"}},  # no spec: not restorable
        {"Names": ["/a"], "Labels": {"org.llmops.spec": json.dumps({"name": "a", "port": 8100})}},
    ]
    assert serving.previous_specs(containers) == [{"name": "a", "port": 8100}, {"name": "b", "port": 8101}]


def test_waited_seconds_adds_the_windows_of_every_wait():
    results = [{"attempts": 4, "time_to_ready": 2.5}, {"attempts": 1, "time_to_ready": 0.2}, {"skipped": True}]
    assert serving.waited_seconds(results, 10) == 32.7


def test_restart_counts_come_from_the_start_results():
    results = [
        {"item": {"name": "a"}, "container": {"RestartCount": 2}},
        {"item": {"name": "b"}, "skipped": True},
    ]
    assert serving.restart_counts(results) == {"a": 2}


def test_failure_messages_mask_the_key_in_each_failed_item():
    looped = {"failed": True, "results": [{"failed": True, "msg": "bad VLLM_API_KEY=k3y"}, {"failed": False, "msg": "ok"}]}
    assert serving.failure_messages(looped, "k3y") == ["bad VLLM_API_KEY=********"]
    assert serving.failure_messages({"failed": True, "msg": "plain"}, "") == ["plain"]


def running(name, spec, state="running"):
    return {"Names": ["/" + name], "State": state,
            "Labels": {"org.llmops.spec-hash": serving.spec_hash(spec), "org.llmops.spec": serving.spec_json(spec)}}


def test_a_rerun_starts_only_the_containers_that_are_missing_stopped_or_of_another_spec():
    specs = [{"name": "vllm-%d" % index, "port": 8100 + index} for index in range(4)]
    containers = [
        running("vllm-0", specs[0]),                       # runs its spec: left alone
        running("vllm-1", specs[1], state="exited"),       # stopped by an operator
        running("vllm-2", dict(specs[2], port=9000)),      # another spec
    ]                                                      # vllm-3 missing
    assert [spec["name"] for spec in serving.containers_to_start(specs, containers)] == ["vllm-1", "vllm-2", "vllm-3"]
    assert serving.containers_to_start(specs[:1], containers) == []


def test_the_spec_hash_is_the_digest_of_the_label_it_travels_with():
    spec = {"name": "vllm", "command": ["/model", "--port", "8000"], "env": {"B": "2", "A": "1"}}
    assert serving.spec_json(spec) == '{"command": ["/model", "--port", "8000"], "env": {"A": "1", "B": "2"}, "name": "vllm"}'
    assert serving.spec_hash(spec) == hashlib.sha256(serving.spec_json(spec).encode()).hexdigest()


def test_a_container_in_a_network_that_went_away_starts_again_with_its_reason():
    spec = {"name": "a", "port": 8000}
    running = {"Names": ["/a"], "State": "running", "Labels": {"org.llmops.spec-hash": serving.spec_hash(spec)},
               "StaleNetwork": "it shares the network of node, which restarted"}
    assert serving.containers_to_start([spec], [running]) == [spec]
    assert serving.restart_reasons([spec], [running]) == {"a": "it shares the network of node, which restarted"}
    assert serving.restart_reasons([spec], [dict(running, StaleNetwork="")]) == {}
    assert serving.containers_to_start([spec], [dict(running, StaleNetwork="")]) == []


def test_the_ranks_restart_together_when_any_node_must_start_one():
    plan = {"nnodes": 2, "nodes": {"head": {"role": "head"}, "w1": {"role": "worker"}, "w2": {"role": "idle"}}}
    hostvars = {
        "head": {"__vllm_serve_containers": {"to_start": [], "broken": {}, "why": []}},
        "w1": {"__vllm_serve_containers": {"to_start": [{"name": "w1-vllm"}], "why": ["w1-vllm: missing"]}},
        "w2": {"__vllm_serve_containers": {"to_start": [{"name": "never"}], "why": ["idle nodes do not count"]}},
    }
    assert serving.group_restart(plan, hostvars) == {"restart": True, "why": ["w1-vllm: missing"]}
    # A rank Docker restarted on its own counts too.
    broken = dict(hostvars, w1={"__vllm_serve_containers": {"to_start": [], "broken": {"w1-vllm": "restarted"},
                                                            "why": ["w1-vllm: restarted"]}})
    assert serving.group_restart(plan, broken) == {"restart": True, "why": ["w1-vllm: restarted"]}
    # A node that failed earlier decided nothing: nothing to start there.
    assert serving.group_restart(plan, {"head": {}, "w1": {}, "w2": {}}) == {"restart": False, "why": []}
    assert serving.group_restart(dict(plan, nnodes=1), hostvars) == {"restart": False, "why": []}


def test_a_rank_docker_restarted_on_its_own_breaks_its_group():
    specs = [{"name": "head-vllm"}, {"name": "other"}]
    containers = [{"Names": ["/head-vllm"], "RestartCount": 2}, {"Names": ["/other"], "RestartCount": 0}]
    assert _serving.broken_ranks(specs, containers) == {
        "head-vllm": "restarted 2 time(s) on its own since the ranks started together"}
    assert _serving.start_reason("head-vllm", {}) == "head-vllm: missing, stopped or of another spec"
    assert _serving.start_reason("a", {"a": "it shares the network of n"}) == "a: it shares the network of n"


def test_one_decision_says_what_starts_restarts_breaks_and_goes_and_why():
    def running(spec, **changes):
        container = {"Names": ["/" + spec["name"]], "State": "running", "RestartCount": 0, "StaleNetwork": "",
                     "Labels": {"org.llmops.spec-hash": serving.spec_hash(spec)}}
        container.update(changes)
        return container

    head, rank = {"name": "vllm", "role": "api"}, {"name": "vllm-rank1", "role": "headless"}
    # A rerun: everything runs its spec.
    assert _serving.serving_changes([head], [running(head)], "vllm", multi_node=True) == {
        "to_start": [], "restart": {}, "broken": {}, "why": [], "remove": []}
    # A missing rank, one Docker restarted, one in a stale network, and a leftover balancer.
    stale = {"name": "vllm-2", "role": "api"}
    decided = _serving.serving_changes(
        [head, rank, stale],
        [running(head, RestartCount=1), running(stale, StaleNetwork="its network went away"),
         {"Names": ["/vllm-balancer"], "State": "running"}],
        "vllm", multi_node=True)
    assert [spec["name"] for spec in decided["to_start"]] == ["vllm-rank1", "vllm-2"]
    assert decided["restart"] == {"vllm-2": "its network went away"}
    assert decided["broken"] == {"vllm": "restarted 1 time(s) on its own since the ranks started together"}
    assert decided["why"] == ["vllm-rank1: missing, stopped or of another spec", "vllm-2: its network went away",
                              "vllm: restarted 1 time(s) on its own since the ranks started together"]
    assert decided["remove"] == ["vllm-balancer"]
    # One node alone: a restart by Docker is its restart policy at work, not a broken group.
    assert _serving.serving_changes([head], [running(head, RestartCount=3)], "vllm", multi_node=False)["broken"] == {}
    # Instances keep their balancer.
    instances = [{"name": "vllm-0", "role": "instance"}, {"name": "vllm-1", "role": "instance"}]
    kept = [running(spec) for spec in instances] + [{"Names": ["/vllm-balancer"], "State": "running"}]
    assert _serving.serving_changes(instances, kept, "vllm", multi_node=False)["remove"] == []
