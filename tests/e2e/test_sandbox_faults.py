"""Faults a production deployment meets, on the sandbox's real vLLM (CPU build): crashes,
operators, a node restart, an interrupted run, bad input, secrets at -vvv. Runs after
test_sandbox.py; each test leaves the sandbox serving its default spec again."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import HEAD, KEY_FILE, MODEL, REPO_ROOT, deploy, docker_inspect, run_playbook

SERVING = HEAD + "-vllm"
WORKER = "llmops-sandbox-worker"
SANDBOX_ROOT = Path("/var/tmp/llmops-sandbox")
WORKER_MODEL = SANDBOX_ROOT / WORKER / "models" / "tiny-qwen"
HUB_LOG = SANDBOX_ROOT / "hub" / "served.log"
SERVING_IMAGE = "llmops-vllm-cpu:0.32.0"


def on_node(node, command):
    return subprocess.run(["docker", "exec", node, "bash", "-c", command], capture_output=True, text=True,
                          check=False).stdout


def serves(base_url, api_key):
    try:
        response = requests.post(base_url + "/completions", headers={"Authorization": "Bearer " + api_key},
                                 json={"model": MODEL, "prompt": "hi", "max_tokens": 1}, timeout=10)
        return response.status_code == 200
    except requests.RequestException:
        return False


def wait_until_serving(base_url, api_key, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if serves(base_url, api_key):
            return
        time.sleep(2)
    state = docker_inspect(SERVING)["State"]
    raise AssertionError("the endpoint did not serve again within %ds; container state %s" % (timeout, state))


def flat(output):
    """The output with Ansible's line wrapping undone, so a phrase can be searched as one line."""
    return " ".join(output.split())


def all_unchanged(recap):
    return recap and all(counts["changed"] == 0 and counts["failed"] == 0 for counts in recap.values())


def remove_worker_weights():
    subprocess.run(["rm", "-rf", str(WORKER_MODEL), str(WORKER_MODEL) + ".revisions"], check=True)


def hub_requests():
    return len(HUB_LOG.read_text().splitlines()) if HUB_LOG.exists() else 0


def test_serving_image_grants_amx_to_the_processes_vllm_spawns():
    """On an AMX CPU every spawned or forked child must hold the AMX permission; elsewhere the
    hook must run and leave the process alone. Decided by this machine's own CPU flags."""
    check = REPO_ROOT / "tests" / "e2e" / "amx_check.py"
    completed = subprocess.run(
        ["docker", "run", "--rm", "-v", "%s:/opt/check/amx_check.py:ro" % check, "--entrypoint", "python",
         SERVING_IMAGE, "/opt/check/amx_check.py"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["pth_files"] == ["llmops-amx-permission.pth"]
    for process in (report, report["spawn"], report["fork"]):
        assert process["hook_loaded"], report  # loaded by the interpreter itself, not by the check
        if report["cpu_has_amx"]:
            assert process["mask"] & (3 << 17) == 3 << 17, report


def no_environment_files_left():
    """The fetch's environment file (transient_unit's, in /run/llmops) lives only for the unit's start."""
    return not any(on_node(node, "ls /run/llmops 2>/dev/null || true").split() for node in (HEAD, WORKER))


def test_check_mode_on_a_node_without_the_model_changes_nothing():
    remove_worker_weights()
    output, recap = deploy("--check", "--tags", "weights")
    assert recap[WORKER]["failed"] == 0 and "Would fetch 6 file(s) of llmops/tiny-qwen@v1" in flat(output), output[-3000:]
    assert not WORKER_MODEL.exists() and not Path(str(WORKER_MODEL) + ".revisions").exists()


def test_interrupted_fan_out_leaves_nothing_open_and_a_rerun_completes():
    remove_worker_weights()
    hub_before = hub_requests()
    command = [str(REPO_ROOT / ".venv/bin/ansible-playbook"), "deploy.yml", "-i", "inventories/sandbox",
               "--tags", "weights", "-e", "weights_mirror_idle_exit=3"]
    run = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and on_node(HEAD, "systemctl is-active llmops-weights-mirror").strip() != "active":
        time.sleep(0.2)
    # As a lost control node or Ctrl-C twice would: the whole run dies at once.
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    killed = time.time()
    assert deadline > killed, "the fan-out mirror never started"
    while time.time() < killed + 30 and on_node(HEAD, "systemctl is-active llmops-weights-mirror").strip() == "active":
        time.sleep(0.5)
    assert on_node(HEAD, "systemctl is-active llmops-weights-mirror").strip() != "active"
    # The idle limit (3 s, 15 s when no request came yet), plus the unit's stop.
    assert time.time() - killed < 15 + 10
    assert no_environment_files_left()
    _output, recap = deploy("--tags", "weights")
    assert recap[WORKER]["failed"] == 0 and (WORKER_MODEL / "config.json").exists()
    assert hub_requests() == hub_before  # the head's verified copy was not fetched again
    assert all_unchanged(deploy("--tags", "weights")[1])


def test_a_vvv_repair_run_keeps_the_hub_token_and_api_key_out_of_the_output_and_the_logs():
    """A -vvv run that repairs two things at once: the worker's weights are gone (fetched again
    from the hub with a token, real ModelScope client) and the head's serving container was
    removed. The group is recreated, the node and Ray containers are left alone, and neither
    secret appears in the output, the journals or the logs."""
    remove_worker_weights()
    head_before, ray_before = docker_inspect(HEAD)["Id"], docker_inspect(HEAD + "-ray")["Id"]
    subprocess.run(["docker", "rm", "-f", SERVING], check=True, capture_output=True)
    token = "ms-" + secrets.token_hex(16)
    output, recap = deploy("-vvv", "-e", "weights_fetch_host=" + WORKER, "-e", "weights_modelscope_token=" + token)
    # The worker's new verified copy changes its rank's mount: both ranks are recreated together.
    assert recap[WORKER]["failed"] == 0 and recap[HEAD]["failed"] == 0, output[-3000:]
    assert "%s: missing, stopped or of another spec" % SERVING in flat(output)
    assert docker_inspect(HEAD)["Id"] == head_before and docker_inspect(HEAD + "-ray")["Id"] == ray_before
    api_key = KEY_FILE.read_text().strip()
    places = {"the -vvv output": output}
    for node in (HEAD, WORKER):
        places["journal of " + node] = on_node(node, "journalctl --no-pager -o cat")
    logs = subprocess.run(["docker", "logs", SERVING], capture_output=True, text=True, check=True)
    places["log of " + SERVING] = logs.stdout + logs.stderr  # vLLM logs to stderr
    ray_token = (SANDBOX_ROOT / HEAD / "secrets" / "ray-auth-token").read_text().strip()
    for node in (HEAD, WORKER):
        ray_logs = subprocess.run(["docker", "logs", node + "-ray"], capture_output=True, text=True, check=True)
        places["log of %s-ray" % node] = ray_logs.stdout + ray_logs.stderr
    for name, text in places.items():
        assert token not in text and api_key not in text and ray_token not in text, "a secret appears in %s" % name
    # The tasks that handle the key ran at -vvv: the one that keeps it and the readiness wait that sends it.
    assert "TASK [llmops.inference.vllm_serve : Provide the API key and the containers' secret environment]" in output
    assert "TASK [llmops.inference.vllm_serve : Wait until each serving container really serves the model]" in output
    assert "TASK [llmops.inference.weights : Start the download (or attach to one still running)]" in output
    assert no_environment_files_left()


@pytest.mark.parametrize("extra, expected", [
    ({"vllm_serve_extra_env": ["A=1"]},
     'vllm_serve_extra_env=["A=1"] is wrong: argument \'vllm_serve_extra_env\' is of type list'),
    ({"vllm_serve_profile": "gpu"}, 'vllm_serve_profile="gpu" is wrong: value of vllm_serve_profile must be one of'),
    ({"weights_mirror_port": 0}, "weights_mirror_port='0' is wrong. Fix: set it to a port from 1 to 65535"),
    ({"vllm_serve_tensor_parallel_size": 4}, "vllm_serve_tensor_parallel_size=4 with the cpu profile"),
    ({"vllm_serve_pipeline_parallel_size": 2}, "vllm_serve_pipeline_parallel_size=2 with the cpu profile across nodes"),
    # Without the sandbox-only shim, as on any production CPU node.
    ({"vllm_serve_distributed_backend": "ray", "vllm_serve_cpu_ray_shim": ""}, "vLLM refuses its Ray executor on CPU"),
    ({"vllm_serve_nodes": 3}, "vllm_serve_nodes=3 but inference_cluster has 2 node(s)"),
    ({"ray_cluster_ports": [6379, 6390]}, "ray_cluster_ports=[6379, 6390] is not a range of at least 36 ports"),
    ({"llmops_min_accelerators": 8}, "llmops_min_accelerators=8, but the node has 0 cpu accelerator(s)"),
    # The cases a new user tried (issue 22): each used to change nodes before it failed.
    ({"vllm_serve_restart_policy": "sometimes"}, 'vllm_serve_restart_policy="sometimes" is wrong: value of vllm_serve_restart_policy must be one of'),
    ({"vllm_serve_extra_args": "--max-num-seqs 64"}, "vllm_serve_extra_args=--max-num-seqs 64 is wrong: it is text"),
    ({"vllm_serve_extra_args": ["--api_key", "sk-x"]}, "--api_key sets --api-key, which the collection sets itself"),
    ({"ray_cluster_object_store_bytes": -5, "ray_cluster_ready_timeout": 0}, "ray_cluster_ready_timeout=0 is wrong: not a whole number of seconds"),
    ({"ray_cluster_socket_ifname": "bond0"}, "ray_cluster_socket_ifname=bond0 is wrong: this node has no interface of that name"),
])
def test_every_class_of_bad_input_stops_in_preflight(extra, expected):
    before = docker_inspect(SERVING)["Id"]
    output, recap = deploy("-e", json.dumps(extra), expect_failure=True)
    assert expected in flat(output) and "On llmops-sandbox-" in output and "Fix:" in output, output[-3000:]
    assert "PLAY [Prepare every inference node]" not in output
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert docker_inspect(SERVING)["Id"] == before


@pytest.mark.parametrize("tag", ["vllm_serve_container", "vllm_serve_verify", "ray_cluster_container", "ray_cluster_verify"])
def test_an_inner_tag_works_alone_and_changes_nothing_on_a_deployed_sandbox(tag):
    """The README: inner role steps carry their own tags. Each used to stop on a variable only
    an untagged step defined (issue 22); the phase tags are run alone by the other tests."""
    output, recap = deploy("--tags", tag)
    assert all_unchanged(recap), output[-3000:]
    if tag == "vllm_serve_verify":
        assert "vLLM serves 'tiny-qwen' at http://" in flat(output)


def test_a_second_run_stops_while_a_run_holds_the_cluster_and_a_killed_runs_lock_is_taken_over():
    """The run lock on the head. The holding run is a stand-in process on this control node
    (its command line names ansible-playbook, as a real run's does): a real run ends too soon
    to be caught in the middle reliably."""
    lock = SANDBOX_ROOT / HEAD / "run.lock"
    holder = subprocess.Popen(["python3", "-c", "import time; time.sleep(300)", "ansible-playbook-stand-in"])
    try:
        lock.write_text(json.dumps({"controller": os.uname().nodename, "pid": holder.pid, "user": "root",
                                    "started": int(time.time()), "playbook": "tags serve"}))
        output, recap = run_playbook("playbooks/verify.yml", expect_failure=True)
        assert "Another run holds the cluster's run lock: root@%s (ansible-playbook pid %d, tags serve)" % (
            os.uname().nodename, holder.pid) in flat(output), output[-3000:]
        assert all(counts["changed"] == 0 for counts in recap.values()) and lock.exists()
    finally:
        holder.kill()
        holder.wait()
    # Its process is gone: the next run takes the lock over, says so, and gives it back at its end.
    output, recap = run_playbook("playbooks/verify.yml")
    assert "Took over the run lock of a run that is gone: root@%s (ansible-playbook pid %d" % (
        os.uname().nodename, holder.pid) in flat(output)
    assert all_unchanged(recap) and not lock.exists()


def test_operator_daemon_json_keys_survive_a_partial_run():
    """Regression: with preflight skipped, the merge used to start from an empty object."""
    original = on_node(HEAD, "cat /etc/docker/daemon.json")
    settings = json.loads(original)
    settings["registry-mirrors"] = ["https://mirror.example.internal"]
    subprocess.run(["docker", "exec", "-i", HEAD, "tee", "/etc/docker/daemon.json"], input=json.dumps(settings),
                   text=True, capture_output=True, check=True)
    try:
        run_playbook("playbooks/host.yml", "--tags", "host_prep_configure")
        assert json.loads(on_node(HEAD, "cat /etc/docker/daemon.json"))["registry-mirrors"] == settings["registry-mirrors"]
    finally:
        subprocess.run(["docker", "exec", "-i", HEAD, "tee", "/etc/docker/daemon.json"], input=original,
                       text=True, capture_output=True, check=True)


def test_ranks_lost_on_two_nodes_in_two_ways_are_recreated_together_by_the_next_run(base_url, api_key):
    """The head's engine dies (Docker restarts that rank on its own, but a rank that restarted
    alone never rejoins its group: measured, it never serves again) and the worker's rank is
    stopped by hand (Docker leaves it exited). The next run sees both and recreates every rank
    together. The other ways to lose a rank (removed, another spec, a node that restarted) are
    the same decision (unit tests: tests/unit/plugins/filter/test_serving.py); a removed one
    runs in the -vvv repair above, a restarted node below."""
    container = docker_inspect(SERVING)
    os.kill(container["State"]["Pid"], signal.SIGKILL)  # as a crash would: the restart policy applies
    deadline = time.time() + 60
    while time.time() < deadline and docker_inspect(SERVING)["RestartCount"] == container["RestartCount"]:
        time.sleep(1)
    assert docker_inspect(SERVING)["RestartCount"] == container["RestartCount"] + 1
    subprocess.run(["docker", "stop", WORKER + "-vllm"], check=True, capture_output=True)
    output, recap = deploy("--tags", "serve")
    assert recap[HEAD]["failed"] == 0 and recap[HEAD]["changed"] == 1 and recap[WORKER]["changed"] == 1, output[-3000:]
    assert "Recreating every rank of the 2-node plan together" in flat(output)
    assert "%s: restarted 1 time(s) on its own since the ranks started together" % SERVING in flat(output)
    assert "%s-vllm: missing, stopped or of another spec" % WORKER in flat(output)
    assert docker_inspect(SERVING)["RestartCount"] == 0 and docker_inspect(WORKER + "-vllm")["State"]["Running"]
    assert serves(base_url, api_key)
    assert all_unchanged(deploy("--tags", "serve")[1])


def test_a_flag_that_makes_vllm_exit_fails_fast_and_the_previous_container_serves_again(base_url, api_key):
    """On the head alone (vllm_serve_nodes: 1): a plan across nodes is not rolled back, its
    ranks on the other nodes took the new spec too (roles/vllm_serve/README.md). The failed
    change also rotates the API key: the old key comes back with the old container."""
    alone = '{"vllm_serve_nodes": 1}'
    _output, recap = deploy("--tags", "serve", "-e", alone)
    assert recap[HEAD]["failed"] == 0 and not docker_inspect(SERVING)["State"]["Restarting"]
    spec_before = docker_inspect(SERVING)["Config"]["Labels"]["org.llmops.spec-hash"]
    new_key = secrets.token_urlsafe(32)
    started = time.time()
    output, _recap = deploy("--tags", "serve", "-e", alone, "-e", '{"vllm_serve_extra_args": ["--no-such-flag"]}',
                            "-e", json.dumps({"vllm_serve_api_key": new_key}), expect_failure=True)
    took = time.time() - started
    assert "vLLM said: vllm: error: unrecognized arguments: --no-such-flag" in flat(output), output[-3000:]
    assert " log lines of %s: | " % SERVING in flat(output)
    assert "Rolled back: the previous serving container(s) serve again" in flat(output)
    # Fails at the first poll that sees the crash, not after vllm_serve_ready_timeout (300 s here);
    # the rest of the time is the rollback's own start.
    assert took < 200, took
    assert docker_inspect(SERVING)["Config"]["Labels"]["org.llmops.spec-hash"] == spec_before
    assert "The previous API key was put back with them" in flat(output)
    # Container and key went back together: the key file holds the key the endpoint accepts.
    assert KEY_FILE.read_text().strip() == api_key and new_key not in output
    assert serves(base_url, api_key) and not serves(base_url, new_key)


def test_a_rotated_api_key_is_the_only_one_served_and_the_key_file_holds_it(base_url, api_key):
    """Rotating a leaked key: set vllm_serve_api_key and rerun. On the head alone, as the test
    before left it. The new key stays: a later run without the variable keeps the key file's."""
    alone = '{"vllm_serve_nodes": 1}'
    new_key = secrets.token_urlsafe(32)
    output, recap = deploy("--tags", "serve", "-e", alone, "-e", json.dumps({"vllm_serve_api_key": new_key}))
    assert recap[HEAD]["failed"] == 0 and new_key not in output
    assert KEY_FILE.read_text().strip() == new_key and oct(KEY_FILE.stat().st_mode & 0o777) == "0o600"
    assert serves(base_url, new_key)
    assert requests.get(base_url + "/models", headers={"Authorization": "Bearer " + api_key}, timeout=10).status_code == 401
    assert "API key: kept on %s in %s" % (HEAD, KEY_FILE) in flat(output)
    # The key is now the kept one: a run without the variable changes nothing and serves it.
    output, recap = deploy("--tags", "serve", "-e", alone)
    assert all_unchanged(recap) and KEY_FILE.read_text().strip() == new_key, output[-3000:]


def test_node_restart_is_repaired_by_a_rerun(base_url, api_key):
    """The sandbox's Ray and serving containers share their node's network namespace; after the
    node restarts they run on in the old one. A rerun restarts the Ray head (the worker rejoins
    it) and recreates both serving ranks, and says why."""
    subprocess.run(["docker", "restart", HEAD], check=True, capture_output=True)
    output, recap = deploy()
    assert recap[HEAD]["failed"] == 0, output[-3000:]
    assert "Restarting %s-ray on %s: it shares the network of %s, which restarted" % (HEAD, HEAD, HEAD) in flat(output)
    assert "Restarting %s-ray on %s: the Ray head restarted" % (WORKER, WORKER) in flat(output)
    assert "%s: it shares the network of %s, which restarted" % (SERVING, HEAD) in flat(output)
    assert serves(base_url, api_key)
    assert all_unchanged(deploy("--tags", "serve")[1])
