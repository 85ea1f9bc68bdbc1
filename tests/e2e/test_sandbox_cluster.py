"""End to end: the sandbox's Ray cluster (cluster phase) and the model served across both
nodes (vLLM's mp backend on CPU, tensor parallel 2, one rank per node). Checked with the real
clients: Ray's own API and CLI, the openai client, Docker. Runs after test_sandbox.py; each
test leaves the sandbox as deployed by default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import openai

from conftest import HEAD, MODEL, NETWORK, deploy, docker_inspect, serving_image

WORKER = "llmops-sandbox-worker"
SANDBOX_ROOT = Path("/var/tmp/llmops-sandbox")
ENGINE_IMAGE = "llmops-vllm-cpu:0.32.0"
RAY_PORT = 6379
DASHBOARD_PORT = 6386  # the first port of ray_cluster_ports + 7

MEMBERS = r'''
import json, platform, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="auto", log_to_driver=False)
@ray.remote(num_cpus=0)
def versions():
    return [ray.__version__, platform.python_version()]
alive = [n for n in ray.nodes() if n["Alive"]]
print("MEMBERS " + json.dumps({n["NodeManagerAddress"]: ray.get(versions.options(
    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()) for n in alive}))
'''


def address(node):
    return docker_inspect(node)["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def members():
    """{address: [ray version, python version]} of the alive nodes, asked inside the head's Ray node."""
    completed = subprocess.run(["docker", "exec", HEAD + "-ray", "python3", "-c", MEMBERS],
                               capture_output=True, text=True, check=True, timeout=120)
    line = [line for line in completed.stdout.splitlines() if line.startswith("MEMBERS ")][-1]
    return json.loads(line[len("MEMBERS "):])


def third_container(*command, token=False):
    """A command in a container on the sandbox network that is no node of the cluster."""
    mount = ["-v", "%s:/token:ro" % (SANDBOX_ROOT / HEAD / "secrets" / "ray-auth-token"),
             "-e", "RAY_AUTH_MODE=token", "-e", "RAY_AUTH_TOKEN_PATH=/token"] if token else []
    return subprocess.run(["docker", "run", "--rm", "--network", NETWORK, *mount, "--entrypoint", command[0],
                           serving_image(), *command[1:]], capture_output=True, text=True, check=False, timeout=180)


def test_the_ray_cluster_has_both_nodes_alive_on_one_version():
    seen = members()
    assert sorted(seen) == sorted([address(HEAD), address(WORKER)])
    assert len({tuple(versions) for versions in seen.values()}) == 1, seen


def test_rays_ports_refuse_a_client_without_the_token():
    head = "%s:%d" % (address(HEAD), RAY_PORT)
    refused = third_container("ray", "status", "--address", head)
    assert refused.returncode != 0
    assert "InvalidAuthToken" in refused.stdout + refused.stderr, (refused.stdout + refused.stderr)[-2000:]
    # The same client with the token is let in: the refusal above was the token, not the network.
    allowed = third_container("ray", "status", "--address", head, token=True)
    assert allowed.returncode == 0 and allowed.stdout.count(" node_") == 2, allowed.stdout[-2000:]
    # The dashboard (and its job API) listens on the head's 127.0.0.1 only.
    probe = ("import socket,sys\ns=socket.socket();s.settimeout(5)\n"
             "sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) else 1)")
    assert third_container("python3", "-c", probe, address(HEAD), str(DASHBOARD_PORT)).returncode == 0


def test_the_ray_token_is_private_and_in_no_environment():
    tokens = [(SANDBOX_ROOT / node / "secrets" / "ray-auth-token") for node in (HEAD, WORKER)]
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in tokens)
    token = tokens[0].read_text().strip()
    assert len(token) >= 32 and tokens[1].read_text().strip() == token
    for container in (HEAD + "-ray", WORKER + "-ray", HEAD + "-vllm", WORKER + "-vllm"):
        inspect = json.dumps(docker_inspect(container))
        assert token not in inspect, container
    assert docker_inspect(HEAD + "-ray")["Config"]["Labels"]["org.llmops.role"] == "ray_cluster"


def test_the_answer_really_used_both_nodes(base_url, api_key):
    answer = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=4)
    assert answer.usage.completion_tokens > 0
    # vLLM formed a world of 2: rank 0 on the head, rank 1 (headless) on the worker.
    logs = subprocess.run(["docker", "logs", HEAD + "-vllm"], capture_output=True, text=True, check=True)
    assert "world_size=2 rank=0" in logs.stdout + logs.stderr
    worker = docker_inspect(WORKER + "-vllm")
    argv = worker["Config"]["Entrypoint"] + worker["Config"]["Cmd"]
    assert "--headless" in argv and argv[argv.index("--node-rank") + 1] == "1"
    assert argv[argv.index("--master-addr") + 1] == address(HEAD)
    processes = subprocess.run(["docker", "top", WORKER + "-vllm"], capture_output=True, text=True, check=True).stdout
    assert "VLLM::Worker_TP1" in processes


def test_the_verify_phase_reports_ray_membership():
    output, recap = deploy("--tags", "verify")
    assert "Ray cluster: 2 of 2 node(s) alive: %s, %s" % (address(HEAD), address(WORKER)) in output, output[-2000:]
    assert all(counts["changed"] == 0 and counts["failed"] == 0 for counts in recap.values())


def test_a_killed_worker_ray_node_rejoins_on_the_next_run():
    head_before = docker_inspect(HEAD + "-ray")["Id"]
    subprocess.run(["docker", "kill", WORKER + "-ray"], check=True, capture_output=True)
    output, recap = deploy("--tags", "cluster")
    assert recap[WORKER]["changed"] == 1 and recap[HEAD]["changed"] == 0, output[-3000:]
    assert docker_inspect(HEAD + "-ray")["Id"] == head_before  # the head was left alone
    assert "Ray cluster: 2 node(s) alive" in output
    assert "gloo all-reduce" in output  # the fabric was proven again
    assert len(members()) == 2


def test_a_changed_ray_option_restarts_the_head_and_the_workers_rejoin_it():
    output, recap = deploy("--tags", "cluster", "-e", "ray_cluster_object_store_bytes=120000000")
    assert recap[HEAD]["changed"] == 1 and recap[WORKER]["changed"] == 1, output[-3000:]
    assert "Restarting %s-ray on %s: the Ray head restarted" % (WORKER, WORKER) in " ".join(output.split())
    assert len(members()) == 2
    _output, recap = deploy("--tags", "cluster")  # back to the default
    assert len(members()) == 2


def test_an_engine_image_without_ray_run_as_it_is_is_refused_in_preflight_before_anything_changes():
    """The sandbox's engine image has no Ray, like upstream's vllm/vllm-openai since vLLM 0.18:
    asked to run it as it is (no derived image), preflight refuses it on every node."""
    containers_before = {name: docker_inspect(name)["Id"] for name in (HEAD + "-ray", WORKER + "-ray", HEAD + "-vllm")}
    output, recap = deploy("-e", "serving_image_derive=false", expect_failure=True)
    flat = " ".join(output.split())
    for node in (HEAD, WORKER):
        assert "On %s: the serving image %s has no Ray" % (node, ENGINE_IMAGE) in flat, output[-3000:]
    assert "Fix: set serving_image_derive: true" in flat
    assert "Check the serving image has what the plan needs" in output
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert {name: docker_inspect(name)["Id"] for name in containers_before} == containers_before
