"""The test hub (sandbox/model_hub.py: the role's mirror plus the hub's routes) against
the real clients, the role's Hugging Face fetcher (roles/weights/files/weights_fetch.py) against
it, and the production mirror (roles/weights/files/weights_mirror.py) alone.

Foundation for the weights phase (issue #5): proves the hub speaks the wire protocols the
pinned clients use (modelscope 1.40.2, huggingface_hub 2.4.0) — listing, whole and ranged
downloads, errors — so that the fetcher, tested against the same hub, speaks the real API too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port, wait_listening
from ansible_collections.llmops.inference.plugins.module_utils._weights import parse_huggingface_listing

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = REPO_ROOT / "roles" / "weights" / "files"
HUB, MIRROR, FETCHER = REPO_ROOT / "sandbox" / "model_hub.py", FILES / "weights_mirror.py", FILES / "weights_fetch.py"
CLIENT = Path(sys.executable).parent / "modelscope"
HF_CLIENT = Path(sys.executable).parent / "hf"
MODEL_FILES = ["config.json", "model.safetensors", "tokenizer/tokenizer.json"]
MODEL = "acme/tiny"


@pytest.fixture
def model_dir(tmp_path):
    source = tmp_path / "source"
    (source / "tokenizer").mkdir(parents=True)
    (source / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"]}\n')
    (source / "tokenizer" / "tokenizer.json").write_text("{}\n")
    (source / "model.safetensors").write_bytes(os.urandom(3_000_000))
    return source


@pytest.fixture
def hub(tmp_path, model_dir, spawn):
    """start(rate=0) -> (endpoint, log path); the hub serves acme/tiny at revision master."""

    def start(rate=0):
        port, log = free_port(), tmp_path / "hub.log"
        spawn([sys.executable, str(HUB), "--port", str(port), "--log", str(log), "--rate", str(rate),
               "--repo", MODEL, "master", str(model_dir)], port)
        return "http://127.0.0.1:%d" % port, log

    return start


def download(endpoint, target, cache, *extra, model=MODEL, timeout=60):
    env = dict(os.environ, MODELSCOPE_ENDPOINT=endpoint, MODELSCOPE_DOWNLOAD_INTRA_CLOUD="false",
               MODELSCOPE_CACHE=str(cache))
    command = [str(CLIENT), "download", "--model", model, "--local_dir", str(target), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def kill_mid_file(process, partial):
    """SIGKILL process (as on a node restart) once partial holds 500 kB; the bytes it kept."""
    deadline = time.time() + 20
    while time.time() < deadline and not (partial.exists() and partial.stat().st_size > 500_000):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = partial.stat().st_size
    assert 0 < kept < 3_000_000  # died mid-file
    return kept


def served(log):
    """The hub's log entries. The hub logs a request after its last byte is sent, so it may
    write a line just after the client exits: read once the log stops growing (5 s at most)."""
    deadline, size = time.time() + 5, -1
    while time.time() < deadline:
        now = log.stat().st_size if log.exists() else 0
        if now == size:
            break
        size = now
        time.sleep(0.3)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_fresh_download_matches_and_each_file_is_served_once(hub, model_dir, tmp_path):
    endpoint, log = hub()
    result = download(endpoint, tmp_path / "target", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("config.json", "tokenizer/tokenizer.json", "model.safetensors"):
        assert (tmp_path / "target" / name).read_bytes() == (model_dir / name).read_bytes()
    assert sorted(entry["path"] for entry in served(log)) == ["config.json", "model.safetensors", "tokenizer/tokenizer.json"]


def test_interrupted_download_resumes_with_a_range_request(hub, model_dir, tmp_path):
    endpoint, log = hub(rate=1_000_000)
    env = dict(os.environ, MODELSCOPE_ENDPOINT=endpoint, MODELSCOPE_DOWNLOAD_INTRA_CLOUD="false",
               MODELSCOPE_CACHE=str(tmp_path / "cache"))
    client = subprocess.Popen([str(CLIENT), "download", "--model", MODEL, "--local_dir", str(tmp_path / "target")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "target" / "model.safetensors.incomplete"
    kept = kill_mid_file(client, partial)

    result = download(endpoint, tmp_path / "target", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "target" / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    resumed = [entry for entry in served(log) if entry["path"] == "model.safetensors" and entry["complete"]]
    assert len(resumed) == 1 and resumed[0]["range_start"] >= kept - 65536 and resumed[0]["range_start"] > 0


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("acme/nope", (), "model acme/nope not found"),
        (MODEL, ("--revision", "v9"), "revision v9 of model acme/tiny not found"),
    ],
)
def test_wrong_model_or_revision_is_refused_with_the_hub_message(hub, tmp_path, model, extra, message):
    endpoint, log = hub()
    result = download(endpoint, tmp_path / "target", tmp_path / "cache", *extra, model=model)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert served(log) == []  # nothing was downloaded


def hf_listing(endpoint, model=MODEL, revision="master"):
    """The listing the role's model_listing module parses, straight from the hub."""
    url = "%s/api/models/%s/revision/%s?blobs=true" % (endpoint, model, revision)
    return parse_huggingface_listing(requests.get(url, timeout=10).json())


def fetch(endpoint, target, listing_path, *, model=MODEL, revision="master", background=False):
    command = [sys.executable, str(FETCHER), "--endpoint", endpoint, "--model", model, "--revision", revision,
               "--dest", str(target), "--listing", str(listing_path), "--attempts", "1"]
    if background:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_real_hf_client_downloads_from_the_hub_and_the_listing_hashes_match(hub, model_dir, tmp_path):
    endpoint, log = hub()
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    result = subprocess.run([str(HF_CLIENT), "download", MODEL, "--revision", "master", "--local-dir",
                             str(tmp_path / "target")], env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for name in MODEL_FILES:
        assert (tmp_path / "target" / name).read_bytes() == (model_dir / name).read_bytes()
    assert sorted(entry["path"] for entry in served(log)) == MODEL_FILES
    # The weights file is listed as LFS (SHA-256), small files by git blob id: as `git hash-object` says.
    listing = {item["path"]: item for item in hf_listing(endpoint)}
    assert listing["model.safetensors"]["sha256"] == hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    git_id = subprocess.run(["git", "hash-object", str(model_dir / "config.json")], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert listing["config.json"] == {"path": "config.json", "size": 40, "git_sha1": git_id}


def test_the_fetcher_resumes_a_killed_download_with_a_range_request(hub, model_dir, tmp_path):
    endpoint, log = hub(rate=1_000_000)
    listing_path = tmp_path / "listing.json"
    listing_path.write_text(json.dumps(hf_listing(endpoint)))
    fetcher = fetch(endpoint, tmp_path / "target", listing_path, background=True)
    partial = tmp_path / "target" / "model.safetensors.incomplete"
    kept = kill_mid_file(fetcher, partial)

    result = fetch(endpoint, tmp_path / "target", listing_path)
    assert result.returncode == 0, result.stderr
    for name in MODEL_FILES:
        assert (tmp_path / "target" / name).read_bytes() == (model_dir / name).read_bytes()
    deadline = time.time() + 5  # the hub logs a body just after its last byte left
    while time.time() < deadline and not [entry for entry in served(log)
                                          if entry["path"] == "model.safetensors" and entry["complete"]]:
        time.sleep(0.05)
    shard = [entry for entry in served(log) if entry["path"] == "model.safetensors"]
    assert shard[-1]["complete"] and shard[-1]["range_start"] == kept  # continued, not restarted
    assert sum(entry["bytes"] for entry in shard) < 3_000_000 + 200_000
    assert not partial.exists()

    served_before = len(served(log))
    assert fetch(endpoint, tmp_path / "target", listing_path).returncode == 0
    assert served(log)[served_before:] == []  # finished files are not fetched again


@pytest.mark.parametrize(
    "model, revision, message",
    [
        ("acme/nope", "master", "Repository acme/nope not found"),
        (MODEL, "v9", "Revision v9 of acme/tiny not found"),
    ],
)
def test_the_fetcher_stops_with_the_hub_message(hub, tmp_path, model, revision, message):
    endpoint, log = hub()
    listing_path = tmp_path / "listing.json"
    listing_path.write_text(json.dumps([{"path": "config.json", "size": 40}]))
    result = fetch(endpoint, tmp_path / "target", listing_path, model=model, revision=revision)
    assert result.returncode == 1 and "config.json: HTTP 404 (%s)" % message in result.stderr
    assert served(log) == []


def test_the_mirror_exits_once_idle_but_not_while_a_download_is_open(model_dir, tmp_path):
    """--idle-exit: a fan-out whose run was interrupted does not leave the model served."""
    port = free_port()
    mirror = subprocess.Popen([sys.executable, str(HUB), "--port", str(port), "--idle-exit", "1.5",
                               "--rate", "1000000", "--repo", MODEL, "master", str(model_dir)])
    try:
        wait_listening(port, "the mirror")
        started = time.monotonic()
        # A 3 MB body at 1 MB/s keeps a request open for about 3 s, longer than the idle limit.
        body = requests.get("http://127.0.0.1:%d/api/v1/models/%s/repo?Revision=master&FilePath=model.safetensors"
                            % (port, MODEL), timeout=30).content
        assert len(body) == 3_000_000 and time.monotonic() - started > 2.5
        assert mirror.wait(timeout=10) == 0
        assert time.monotonic() - started < 3.0 + 1.5 + 3
    finally:
        mirror.kill()


def test_the_mirror_waits_longer_for_its_first_request(model_dir):
    port = free_port()
    mirror = subprocess.Popen([sys.executable, str(HUB), "--port", str(port), "--idle-exit", "0.5",
                               "--first-request-within", "2", "--repo", MODEL, "master", str(model_dir)])
    try:
        wait_listening(port, "the mirror")
        time.sleep(1.0)  # past the idle limit, within the first-request limit
        assert mirror.poll() is None
        assert requests.get("http://127.0.0.1:%d/api/v1/models/%s/revisions" % (port, MODEL), timeout=10).ok
        assert mirror.wait(timeout=10) == 0
    finally:
        mirror.kill()


def publish_marker(directory):
    """Give a folder the marker the role writes when it publishes (the mirror serves only those)."""
    files = [{"path": str(path.relative_to(directory)), "size": path.stat().st_size,
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
             for path in sorted(directory.rglob("*")) if path.is_file()]
    (directory / ".llmops-weights.json").write_text(json.dumps({"format": 1, "files": files}))


def test_the_production_mirror_serves_a_published_folder_to_the_fetcher_and_nothing_else(model_dir, tmp_path, spawn):
    publish_marker(model_dir)
    port, log = free_port(), tmp_path / "mirror.log"
    spawn([sys.executable, str(MIRROR), "--port", str(port), "--log", str(log), "--repo", MODEL, "master",
           str(model_dir)], port)
    endpoint = "http://127.0.0.1:%d" % port
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps(json.loads((model_dir / ".llmops-weights.json").read_text())["files"]))
    result = fetch(endpoint, tmp_path / "target", listing)
    assert result.returncode == 0, result.stderr
    for name in MODEL_FILES:
        assert (tmp_path / "target" / name).read_bytes() == (model_dir / name).read_bytes()
    assert sorted(entry["path"] for entry in served(log)) == sorted(MODEL_FILES)
    # The hub's routes are the test hub's, not the node's: listings and the ModelScope API are 404.
    for route in ("/api/v1/models/%s/repo/files?Revision=master" % MODEL, "/api/models/%s/revision/master" % MODEL,
                  "/api/models/%s/tree/master" % MODEL):
        assert requests.get(endpoint + route, timeout=10).status_code == 404


def test_the_production_mirror_refuses_a_folder_the_role_did_not_verify(model_dir):
    result = subprocess.run([sys.executable, str(MIRROR), "--port", str(free_port()), "--repo", MODEL, "master",
                             str(model_dir)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1 and "only a folder the role verified is served" in result.stderr
