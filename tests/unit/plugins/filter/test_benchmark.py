"""The benchmark's filters and the endpoint as deployed (module_utils/_bench.py), read from a real
inspect document of the sandbox's API container, and a failed level's evidence with the key masked."""

from __future__ import annotations

import json

from ansible_collections.llmops.inference.plugins.filter import benchmark
from ansible_collections.llmops.inference.plugins.module_utils._bench import deployed_endpoint

from conftest import FIXTURES

INFO = json.loads((FIXTURES / "vllm_bench" / "endpoint-container.json").read_text())


def test_the_endpoint_as_deployed_comes_from_its_running_container():
    endpoint = deployed_endpoint(INFO["container"], "http://172.30.20.2:8000", "tiny-qwen", "llmops-sandbox-head-vllm")
    assert endpoint["state"] == "running" and endpoint["image"] == "llmops-vllm-cpu:0.32.0"
    assert endpoint["image_id"].startswith("sha256:") and len(endpoint["spec_hash"]) == 64
    assert endpoint["max_model_len"] == 512 and "/models/tiny-qwen.revisions/v1." in endpoint["model_dir"]
    assert benchmark.endpoint_problems(endpoint, "head") == []


def test_an_absent_or_stopped_container_stops_the_benchmark_with_the_fix():
    absent = deployed_endpoint(None, "http://h:8000", "m", "vllm-serve")
    assert "vllm-serve on head is absent" in benchmark.endpoint_problems(absent, "head")[0]
    stopped = json.loads(json.dumps(INFO))
    stopped["container"]["State"]["Status"] = "exited"
    message = benchmark.endpoint_problems(deployed_endpoint(stopped["container"], "http://h:8000", "m", "vllm-serve"),
                                          "head")[0]
    assert "is exited" in message and "--tags serve" in message


def test_a_failed_levels_evidence_is_its_last_lines_with_the_key_masked():
    output = (FIXTURES / "vllm_bench" / "stdout-c2.txt").read_text() + "\nRuntimeError: 401 for key sk-secret\n"
    evidence = benchmark.benchmark_evidence({"container": {"Output": output}, "status": 1}, "sk-secret", lines=5)
    lines = evidence.splitlines()
    assert len(lines) == 5 and lines[-1] == "RuntimeError: 401 for key ********"
    assert "triton" not in evidence and "sk-secret" not in evidence
    assert benchmark.benchmark_evidence({"msg": "pull failed"}, "") == "pull failed"


def test_the_level_line_reads_vllms_json_text():
    text = (FIXTURES / "vllm_bench" / "level-c1.json").read_text()
    line = benchmark.benchmark_level_line(text, {"name": "c1"}, 1, 2)
    assert line.startswith("level 1/2 c1: 6/6 requests ok")
