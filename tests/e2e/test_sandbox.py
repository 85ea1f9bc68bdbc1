"""End to end: deploy.yml put a real vLLM (CPU build) on the sandbox nodes. Checked with the
official openai client. Output is random (random weights): assert shapes, never text.
Runs after sandbox/up.sh; the last tests change a serving option and rerun --tags serve. The
model is served across both nodes (test_sandbox_cluster.py checks that part)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import openai
import pytest
import requests

from conftest import HEAD, MODEL, deploy, docker_inspect

SERVING = HEAD + "-vllm"
# The worker's headless vLLM rank (the mp backend across both nodes).
WORKER_RANK = "llmops-sandbox-worker-vllm"


def exists(container):
    return subprocess.run(["docker", "inspect", container], capture_output=True, check=False).returncode == 0


def client(base_url, key):
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def test_generated_key_is_long_and_private(api_key):
    assert len(api_key) >= 32 and api_key.isalnum()


def test_models_lists_the_served_name(base_url, api_key):
    models = client(base_url, api_key).models.list()
    assert [model.id for model in models.data] == [MODEL]


def test_chat_completion(base_url, api_key):
    reply = client(base_url, api_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, seed=1
    )
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0


def test_streamed_chat_completion(base_url, api_key):
    stream = client(base_url, api_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, seed=1, stream=True
    )
    chunks = list(stream)
    assert len(chunks) >= 2
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason in ("length", "stop")
    assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in chunks)


def test_stream_ends_with_done_marker(base_url, api_key):
    response = requests.post(
        base_url + "/chat/completions",
        headers={"Authorization": "Bearer " + api_key},
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": True},
        timeout=60,
    )
    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) >= 2


def test_no_key_is_refused(base_url):
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "wrong-key").models.list()
    assert requests.get(base_url + "/models", timeout=10).status_code == 401


def test_serving_container_shape():
    container = docker_inspect(SERVING)
    assert container["HostConfig"]["NetworkMode"] == "container:" + docker_inspect(HEAD)["Id"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
    assert mounts["/model"]["RW"] is False
    assert container["Config"]["Labels"]["org.llmops.spec-hash"]
    argv = container["Config"]["Entrypoint"] + container["Config"]["Cmd"]
    assert not any("--api-key" in item for item in argv)  # the key travels in the environment
    assert "--enforce-eager" in argv and argv[argv.index("--served-model-name") + 1] == MODEL
    # NCCL / Gloo use the interface of the route to the peer node; vLLM the node's own address.
    head_ip = docker_inspect(HEAD)["NetworkSettings"]["Networks"]["llmops-sandbox"]["IPAddress"]
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "eth0"
    assert env["VLLM_HOST_IP"] == head_ip and argv[argv.index("--host") + 1] == head_ip
    assert len(env["VLLM_API_KEY"]) >= 32
    # It came from a 0600 environment file, not from the task that made the container.
    env_file = Path("/var/tmp/llmops-sandbox") / HEAD / "serve" / (SERVING + ".env")
    assert env_file.stat().st_mode & 0o777 == 0o600


def test_second_deploy_changes_nothing():
    before = docker_inspect(SERVING)["Id"]
    _output, recap = deploy()
    assert recap and all(counts["changed"] == 0 and counts["failed"] == 0 for counts in recap.values()), recap
    assert docker_inspect(SERVING)["Id"] == before


def test_check_mode_changes_nothing():
    before = docker_inspect(SERVING)["Id"]
    _output, recap = deploy("--check")
    assert all(counts["changed"] == 0 and counts["failed"] == 0 for counts in recap.values()), recap
    assert docker_inspect(SERVING)["Id"] == before


def test_bad_input_stops_before_anything_changes():
    before = docker_inspect(SERVING)["Id"]
    output, recap = deploy("-e", "vllm_serve_gpu_memory_utilization=0.98", expect_failure=True)
    assert "On llmops-sandbox-head" in output and "vllm_serve_gpu_memory_utilization=0.98" in output
    assert "at most" in output and "0.95" in output  # the fix
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert "PLAY [Prepare every inference node]" not in output  # stopped in preflight
    assert docker_inspect(SERVING)["Id"] == before


def test_changed_option_recreates_only_the_serving_containers(base_url, api_key):
    serving_before, head_before = docker_inspect(SERVING)["Id"], docker_inspect(HEAD)["Id"]
    rank_before, ray_before = docker_inspect(WORKER_RANK)["Id"], docker_inspect(HEAD + "-ray")["Id"]
    output, recap = deploy("--tags", "serve", "-e", "vllm_serve_max_model_len=256")
    assert recap[HEAD]["changed"] == 1 and recap["llmops-sandbox-worker"]["changed"] == 1, output[-2000:]
    assert docker_inspect(SERVING)["Id"] != serving_before
    # The worker's rank has the same option: recreated with it; nothing else moved.
    assert docker_inspect(WORKER_RANK)["Id"] != rank_before
    assert "256" in docker_inspect(WORKER_RANK)["Config"]["Cmd"]
    assert docker_inspect(HEAD)["Id"] == head_before and docker_inspect(HEAD + "-ray")["Id"] == ray_before
    # The endpoint came back (the role waited for readiness) with the new option.
    response = requests.get(base_url + "/models", headers={"Authorization": "Bearer " + api_key}, timeout=10)
    assert response.json()["data"][0]["max_model_len"] == 256
    assert "vLLM serves 'tiny-qwen'" in output


def test_multi_instance_mode_balances_two_instances(base_url, api_key):
    output, recap = deploy("--tags", "serve", "-e", "vllm_serve_instances=2")
    assert recap[HEAD]["failed"] == 0, output[-2000:]
    names = {name: docker_inspect(name) for name in (SERVING + "-0", SERVING + "-1", SERVING + "-balancer")}
    assert all(container["State"]["Running"] for container in names.values())
    assert not exists(SERVING)  # the single-instance container is gone
    assert not exists(WORKER_RANK)  # instances serve from the head alone: the worker's rank is gone
    assert names[SERVING + "-0"]["Config"]["Env"] != names[SERVING + "-1"]["Config"]["Env"]  # own core slice
    answers = [
        client(base_url, api_key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi %d" % n}], max_tokens=4
        )
        for n in range(6)
    ]
    assert all(answer.usage.completion_tokens > 0 for answer in answers)
    # Both instances served some of them (leastconn through HAProxy).
    for index in (0, 1):
        metrics = subprocess.run(
            ["docker", "exec", HEAD, "curl", "-sf", "http://127.0.0.1:%d/metrics" % (8100 + index)],
            capture_output=True, text=True, check=True,
        ).stdout
        served = sum(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("vllm:request_success_total"))
        assert served >= 1, "instance %d served nothing" % index


def test_back_to_one_instance_removes_the_balancer(base_url, api_key):
    output, recap = deploy("--tags", "serve")
    assert recap[HEAD]["failed"] == 0, output[-2000:]
    assert docker_inspect(SERVING)["State"]["Running"]
    for gone in (SERVING + "-0", SERVING + "-1", SERVING + "-balancer"):
        assert not exists(gone)
    assert docker_inspect(WORKER_RANK)["State"]["Running"]  # across both nodes again
    assert [model.id for model in client(base_url, api_key).models.list().data] == [MODEL]
