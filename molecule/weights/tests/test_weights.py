"""The weights role against the local hub, case by case, after converge and idempotence.

Converge placed acme/tiny@v1 (four files, 8 MB) on the head (from the hub, ModelScope API) and
on the worker (from the head's mirror). The last test takes the Hugging Face API of the same hub. Each test below runs the real weights playbook again with the
molecule inventory and reads real state: files on the nodes, the hub's and the mirror's logs
of every file body they sent. The tests run in file order; each leaves the nodes serving a
complete model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

HEAD, WORKER, HUB = "llmops-weights-head", "llmops-weights-worker", "llmops-weights-hub"
MODEL_FILES = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
               "tokenizer/tokenizer.json"]
PLAYBOOK = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "weights.yml")


def sh(container, script, check=True):
    completed = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True,
                               check=False)
    if check and completed.returncode != 0:
        raise AssertionError("%s: %s failed: %s" % (container, script, completed.stderr))
    return completed.stdout


def served(container=HUB, log="/srv/hub/served.log"):
    text = sh(container, "cat %s 2>/dev/null || true" % log)
    return [json.loads(line) for line in text.splitlines()]


def mirror_served():
    return served(HEAD, "/srv/models/tiny.revisions/mirror.log")


def deploy(*extra, background=False):
    """Run the weights playbook; returns (rc, output) or the running process."""
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], PLAYBOOK, *extra]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_FORCE_COLOR="0")
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def changed_count(output):
    stats = json.loads(output[output.index("{"):])["stats"]
    return sum(host["changed"] for host in stats.values())


def task_results(output, name_part):
    """Every host's result of the tasks whose name holds name_part, in any play (the preflight
    header's plays come first)."""
    document = json.loads(output[output.index("{"):])
    return [host_result for play in document["plays"] for task in play["tasks"] if name_part in task["task"]["name"]
            for host_result in task["hosts"].values()]


def failed_messages(output):
    """The messages of the tasks that failed, for an assertion's evidence."""
    document = json.loads(output[output.index("{"):])
    return [(task["task"]["name"], result.get("msg")) for play in document["plays"] for task in play["tasks"]
            for result in task["hosts"].values() if result.get("failed")]


def hub_sha256(revision):
    return dict(line.split()[::-1] for line in sh(HUB, "cd /srv/hub/%s && sha256sum %s" % (revision, " ".join(MODEL_FILES))).splitlines())


def node_sha256(container, weights_dir="/srv/models/tiny", files=tuple(MODEL_FILES)):
    return dict(line.split()[::-1] for line in sh(container, "cd %s && sha256sum %s" % (weights_dir, " ".join(files))).splitlines())


def kill_fetch_mid_file(partial):
    """Kill the head's fetch unit (as on a node restart) once partial holds 1.5 MB; its size then."""
    deadline = time.time() + 120
    while time.time() < deadline and int(sh(HEAD, "stat -c %%s %s 2>/dev/null || echo 0" % partial)) < 1_500_000:
        time.sleep(0.2)
    sh(HEAD, "systemctl kill --signal=SIGKILL llmops-weights-fetch")
    return partial


def test_both_nodes_hold_the_exact_model_and_the_hub_served_each_file_once():
    wanted = hub_sha256("v1")
    assert node_sha256(HEAD) == wanted and node_sha256(WORKER) == wanted
    assert sorted(entry["path"] for entry in served()) == sorted(MODEL_FILES)  # once per cluster
    assert sorted(entry["path"] for entry in mirror_served()) == sorted(MODEL_FILES)  # the worker's copy
    for node in (HEAD, WORKER):
        assert sh(node, "readlink /srv/models/tiny").startswith("tiny.revisions/v1.")
        marker = json.loads(sh(node, "cat /srv/models/tiny/.llmops-weights.json"))
        assert (marker["model"], marker["revision"], len(marker["files"])) == ("acme/tiny", "v1", 4)
        assert sh(node, "systemctl is-active llmops-weights-mirror || true").strip() != "active"
        assert sh(node, "ls /run/llmops 2>/dev/null || true").strip() == ""  # no environment file left


def test_a_rerun_with_the_hub_down_changes_nothing_and_reads_no_weights():
    sh(HUB, "systemctl stop hub")
    try:
        rc, output = deploy()
    finally:
        sh(HUB, "start-hub")
    assert rc == 0, output[-3000:]
    assert changed_count(output) == 0
    checks = task_results(output, "Check the weights already on each node")
    assert [result["complete"] for result in checks] == [True, True]
    assert [result["hashed_bytes"] for result in checks] == [0, 0]  # no re-hash of the weights


def test_a_corrupted_file_is_detected_and_only_it_is_fetched_again():
    sh(WORKER, "printf 'XXXX' | dd of=/srv/models/tiny/model-00002-of-00002.safetensors conv=notrunc status=none")
    before_hub, before_mirror = len(served()), len(mirror_served())
    rc, output = deploy()
    assert rc == 0, output[-3000:]
    assert node_sha256(WORKER) == hub_sha256("v1")
    assert served()[before_hub:] == []  # the head had it: nothing from the hub
    assert [entry["path"] for entry in mirror_served()[before_mirror:]] == ["model-00002-of-00002.safetensors"]


def test_an_interrupted_fetch_of_a_new_revision_resumes_and_fetches_only_what_changed():
    sh(HUB, "start-hub 1000000")  # 1 MB/s: the 6 MB shard takes seconds
    before = len(served())
    playbook = deploy("-e", "weights_revision=v2", background=True)
    partial = kill_fetch_mid_file("/srv/models/tiny.revisions/v2.staging/model-00001-of-00002.safetensors.incomplete")
    output = playbook.communicate(timeout=180)[0]
    assert playbook.returncode != 0
    assert "Rerun the weights phase (--tags weights) to resume" in output
    kept = int(sh(HEAD, "stat -c %%s %s" % partial))
    assert kept >= 1_500_000
    assert sh(HEAD, "readlink /srv/models/tiny").startswith("tiny.revisions/v1.")  # still serving v1

    sh(HUB, "start-hub")
    rc, output = deploy("-e", "weights_revision=v2")
    assert rc == 0, output[-3000:]
    assert node_sha256(HEAD) == hub_sha256("v2") and node_sha256(WORKER) == hub_sha256("v2")
    fetched = served()[before:]
    # Only the changed shard crossed from the hub; the rest was linked from v1.
    assert {entry["path"] for entry in fetched} == {"model-00001-of-00002.safetensors"}
    resumed = [entry for entry in fetched if entry["complete"]]
    assert len(resumed) == 1 and resumed[0]["range_start"] > 0
    assert sum(entry["bytes"] for entry in fetched) < 6_000_000 + 200_000  # not fetched twice


@pytest.mark.parametrize(
    "override, message",
    [
        ("weights_model=acme/nope", "model acme/nope not found"),
        ("weights_revision=v9", "revision v9 of model acme/tiny not found"),
    ],
)
def test_a_wrong_model_or_revision_stops_with_the_hub_message_and_keeps_the_model(override, message):
    before = len(served())
    rc, output = deploy("-e", override)
    assert rc != 0 and message in output, failed_messages(output)
    assert served()[before:] == []
    assert node_sha256(HEAD) == hub_sha256("v2")  # the published model is untouched


def test_too_little_disk_on_one_node_stops_before_any_download():
    before = len(served())
    rc, output = deploy("-e", "weights_revision=v2", "-e", "weights_dir=/srv/small/tiny")
    assert rc != 0
    failures = [result["msg"] for result in task_results(output, "Check every node has room") if result.get("failed")]
    assert len(failures) == 1 and failures[0].startswith("On %s: acme/tiny@v2 needs 7.63 MB more" % WORKER)
    assert "has only 1.00 MB free" in failures[0] and "Nothing was downloaded" in failures[0]
    assert served()[before:] == []
    assert sh(HEAD, "ls /srv/small 2>&1 || true").count("No such file") == 1  # the head changed nothing either


def test_check_mode_reports_a_new_revision_and_changes_nothing():
    rc, output = deploy("-e", "weights_revision=v1", "--check")
    assert rc == 0, output[-3000:]
    assert changed_count(output) > 0
    assert sh(HEAD, "readlink /srv/models/tiny").startswith("tiny.revisions/v2.")


def test_the_huggingface_source_fetches_once_resumes_a_killed_fetch_and_fans_out():
    """Same hub, its Hugging Face API; the role's own fetcher (the hf client cannot resume)."""
    source = ["-e", "weights_source=huggingface", "-e", "weights_huggingface_endpoint=http://llmops-weights-hub:8089",
              "-e", "weights_dir=/srv/models/hf-tiny", "-e", "weights_revision=v2"]
    sh(HUB, "start-hub 1000000")
    before = len(served())
    playbook = deploy(*source, background=True)
    partial = kill_fetch_mid_file("/srv/models/hf-tiny.revisions/v2.staging/model-00001-of-00002.safetensors.incomplete")
    output = playbook.communicate(timeout=180)[0]
    assert playbook.returncode != 0 and "Rerun the weights phase (--tags weights) to resume" in output
    kept = int(sh(HEAD, "stat -c %%s %s" % partial))
    assert kept >= 1_500_000

    sh(HUB, "start-hub")
    rc, output = deploy(*source)
    assert rc == 0, output[-3000:]
    assert node_sha256(HEAD, "/srv/models/hf-tiny") == hub_sha256("v2")
    assert node_sha256(WORKER, "/srv/models/hf-tiny") == hub_sha256("v2")
    fetched = served()[before:]
    assert {entry["api"] for entry in fetched} == {"huggingface"}
    finished = [entry for entry in fetched if entry["complete"]]
    assert sorted(entry["path"] for entry in finished) == sorted(MODEL_FILES)  # each file once, from the hub
    shard = [entry for entry in finished if entry["path"] == "model-00001-of-00002.safetensors"]
    assert shard[0]["range_start"] == kept  # continued from the partial file, not restarted
    assert sum(entry["bytes"] for entry in fetched) < 8_000_000 + 500_000
    mirror = served(HEAD, "/srv/models/hf-tiny.revisions/mirror.log")
    assert sorted(entry["path"] for entry in mirror) == sorted(MODEL_FILES)  # the worker's copy, from the head
    marker = json.loads(sh(WORKER, "cat /srv/models/hf-tiny/.llmops-weights.json"))
    by_path = {item["path"]: item for item in marker["files"]}
    assert marker["source"] == "huggingface" and len(by_path["config.json"]["git_sha1"]) == 40
    assert len(by_path["model-00001-of-00002.safetensors"]["sha256"]) == 64
    # Fan-out needs no pip on the workers: only the fetch node ever had the ModelScope client.
    assert sh(WORKER, "ls /var/lib/llmops-inference/venvs/modelscope 2>&1 || true").count("No such file") == 1


def test_the_controller_source_is_copied_once_and_fanned_out(tmp_path):
    """A folder on the control node (this test's host): hashed there, copied to the head, fanned out."""
    model = {"config.json": b'{"architectures": ["Qwen2ForCausalLM"]}\n', "weights/model.safetensors": os.urandom(300_000)}
    for path, data in model.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    source = ["-e", "weights_source=controller", "-e", "weights_controller_dir=%s" % tmp_path,
              "-e", "weights_dir=/srv/models/ctl-tiny", "-e", "weights_revision=v1"]
    before = len(served())
    rc, output = deploy(*source)
    assert rc == 0, output[-3000:]
    wanted = {path: hashlib.sha256(data).hexdigest() for path, data in model.items()}
    for node in (HEAD, WORKER):
        assert node_sha256(node, "/srv/models/ctl-tiny", model) == wanted
        assert json.loads(sh(node, "cat /srv/models/ctl-tiny/.llmops-weights.json"))["source"] == "controller"
    assert served()[before:] == []  # the hub is not involved
    mirror = served(HEAD, "/srv/models/ctl-tiny.revisions/mirror.log")
    assert sorted(entry["path"] for entry in mirror) == sorted(model)  # the worker's copy, from the head
    rc, output = deploy(*source)
    assert rc == 0 and changed_count(output) == 0, output[-3000:]


def test_the_local_source_is_only_checked_and_a_missing_model_is_named():
    rc, output = deploy("-e", "weights_source=local", "-e", "weights_dir=/srv/models/tiny")
    assert rc == 0 and changed_count(output) == 0, output[-3000:]
    rc, output = deploy("-e", "weights_source=local", "-e", "weights_dir=/srv/models/absent")
    assert rc != 0
    assert "weights_source=local but /srv/models/absent/config.json does not exist" in output
