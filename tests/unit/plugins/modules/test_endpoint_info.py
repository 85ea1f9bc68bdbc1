"""endpoint_info against the Docker Engine API stood in for on a unix socket
(tests/fixtures/fake_docker_api.py), with the sandbox's real inspect document of its API container."""

from __future__ import annotations

import json

from ansible_collections.llmops.inference.plugins.modules import endpoint_info

from conftest import FIXTURES

INSPECT = json.loads((FIXTURES / "vllm_bench" / "endpoint-container.json").read_text())["container"]


def test_the_running_endpoint_and_its_key_are_read(tmp_path, docker, run_module):
    docker.containers["llmops-sandbox-head-vllm"] = INSPECT
    key_file = tmp_path / "vllm-api-key"
    key_file.write_text("sk-" + "x" * 40 + "\n")
    result, failed = run_module(endpoint_info.main, {
        "container": "llmops-sandbox-head-vllm", "url": "http://172.30.20.2:8000", "model": "tiny-qwen",
        "api_key_file": str(key_file), "docker_host": docker.docker_host})
    assert not failed and not result["changed"], result
    endpoint = result["endpoint"]
    assert (endpoint["state"], endpoint["image"], endpoint["max_model_len"]) == ("running", "llmops-vllm-cpu:0.32.0", 512)
    assert len(endpoint["spec_hash"]) == 64 and "/models/tiny-qwen.revisions/v1." in endpoint["model_dir"]
    assert result["api_key"] == "sk-" + "x" * 40


def test_an_absent_container_reads_no_key(tmp_path, docker, run_module):
    key_file = tmp_path / "vllm-api-key"
    key_file.write_text("sk-secret")
    result, failed = run_module(endpoint_info.main, {
        "container": "vllm-serve", "url": "http://h:8000", "model": "m", "api_key_file": str(key_file),
        "docker_host": docker.docker_host})
    assert not failed and result["endpoint"]["state"] == "absent" and result["api_key"] == ""


def test_an_engine_that_does_not_answer_fails_naming_the_socket(tmp_path, run_module):
    result, failed = run_module(endpoint_info.main, {
        "container": "c", "url": "u", "model": "m", "docker_host": "unix://%s/none.sock" % tmp_path})
    assert failed and "cannot ask the Docker engine at unix://" in result["msg"]
