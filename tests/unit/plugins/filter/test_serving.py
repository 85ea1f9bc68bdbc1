"""The vllm_serve filters: the serving plan decided in preflight, and the recovery helpers."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.llmops.inference.plugins.filter import serving

CPU = {"vendor": "cpu", "count": 0}
H100x8 = {"vendor": "nvidia", "count": 8}
VASTAI = {"vendor": "vastai", "count": 4}


def plan(accelerators, nodes=1, vcpus=2, **options):
    wanted = {"profile": "auto", "tensor_parallel_size": 0, "pipeline_parallel_size": 0, "instances": 1}
    wanted.update(options)
    return serving.serving_plan(accelerators, wanted, "head", nodes, vcpus)


@pytest.mark.parametrize("accelerators, options, profile, tensor, pipeline", [
    (CPU, {}, "cpu", 1, 1),
    (H100x8, {}, "nvidia", 8, 1),
    (H100x8, {"instances": 4}, "nvidia", 2, 1),
    (VASTAI, {"tensor_parallel_size": 2, "instances": 2}, "vastai", 2, 1),
    (H100x8, {"profile": "cpu"}, "cpu", 1, 1),  # the CPU build can run anywhere
])
def test_automatic_values_follow_the_node(accelerators, options, profile, tensor, pipeline):
    result = plan(accelerators, **options)
    assert (result["profile"], result["tensor_parallel"], result["pipeline_parallel"], result["problems"]) == (
        profile, tensor, pipeline, [])


@pytest.mark.parametrize("accelerators, nodes, options, message", [
    (CPU, 2, {"tensor_parallel_size": 4},
     "On head: vllm_serve_tensor_parallel_size=4 with the cpu profile: vLLM on CPU serves one node with tensor "
     "parallel 1 here. Fix: leave vllm_serve_tensor_parallel_size at 0 (automatic) or 1; use vllm_serve_instances "
     "to use more cores."),
    (CPU, 1, {"instances": 3},
     "On head: vllm_serve_instances=3 but the node has 2 CPU(s): each instance needs at least one. Fix: set "
     "vllm_serve_instances to at most 2."),
    (CPU, 1, {"profile": "nvidia"},
     "On head: vllm_serve_profile=nvidia but the node has 0 cpu accelerator(s). Fix: set vllm_serve_profile to "
     "auto or cpu."),
    (H100x8, 1, {"tensor_parallel_size": 4, "instances": 3},
     "On head: vllm_serve_tensor_parallel_size=4 x vllm_serve_instances=3 needs 12 nvidia accelerator(s) but the "
     "node has 8. Fix: make tensor parallel x instances at most 8 (0 = automatic)."),
    (H100x8, 1, {"instances": 9},
     "On head: vllm_serve_instances=9 needs at least one nvidia accelerator each but the node has 8. Fix: set "
     "vllm_serve_instances to at most 8."),
    (H100x8, 1, {"pipeline_parallel_size": 2},
     "On head: vllm_serve_pipeline_parallel_size=2 but inference_cluster has 1 node(s), one pipeline stage each. "
     "Fix: set it to at most 1 (0 = automatic)."),
    (H100x8, 2, {},
     "On head: vllm_serve_pipeline_parallel_size resolves to 2 (one stage per node), but serving across nodes "
     "needs the cluster phase, which is not built yet. Fix: set vllm_serve_pipeline_parallel_size: 1 to serve "
     "from the head alone."),
])
def test_a_plan_that_cannot_work_is_refused_with_the_one_wrong_input(accelerators, nodes, options, message):
    assert plan(accelerators, nodes=nodes, **options)["problems"] == [message]


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
