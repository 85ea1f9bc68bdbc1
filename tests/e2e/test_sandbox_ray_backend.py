"""End to end: the model served across both sandbox nodes through the Ray backend, as the
documents this project started from do on GPUs (`--distributed-executor-backend ray`: the API
server on the head drives a vLLM worker in every node's Ray node). vLLM refuses Ray on CPU;
the sandbox loads a SANDBOX-ONLY shim (sandbox/ray_on_cpu, vllm_serve_cpu_ray_shim) into the
Ray nodes and the API server that lets it. Runs last; leaves the sandbox on the mp backend, as
deployed by default."""

from __future__ import annotations

import subprocess

import openai

from conftest import HEAD, MODEL, deploy, docker_inspect

WORKER = "llmops-sandbox-worker"


def argv(container):
    config = docker_inspect(container)["Config"]
    return (config["Entrypoint"] or []) + (config["Cmd"] or [])


def test_the_model_is_served_across_both_nodes_through_the_ray_backend(base_url, api_key):
    try:
        output, recap = deploy("-e", "vllm_serve_distributed_backend=ray")
        assert "backend ray" in " ".join(output.split())
        # The API server drives the cluster: no headless rank, the worker's Ray node serves.
        api = argv(HEAD + "-vllm")
        assert api[api.index("--distributed-executor-backend") + 1] == "ray"
        assert subprocess.run(["docker", "inspect", WORKER + "-vllm"], capture_output=True, check=False).returncode != 0
        answer = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=4)
        assert answer.usage.completion_tokens > 0
        assert "-tp2-" in (answer.system_fingerprint or ""), answer.system_fingerprint
        # Tensor parallel rank 1 is a Ray actor in the worker's Ray node, with the shim loaded.
        processes = subprocess.run(["docker", "top", WORKER + "-ray"], capture_output=True, text=True, check=True).stdout
        assert "ray::RayWorkerProc" in processes, processes
        ray_node = argv(WORKER + "-ray")
        assert '--resources={"llmops_cpu_rank": 1}' in ray_node
        rerun, recap = deploy("-e", "vllm_serve_distributed_backend=ray", "--tags", "cluster,serve")
        assert all(counts["changed"] == 0 for counts in recap.values()), recap
    finally:
        deploy()
    assert "--headless" in argv(WORKER + "-vllm")  # back on the mp backend
