"""The ModelScope mirror (roles/weights/files/modelscope_mirror.py) against the real client.

Foundation for the weights phase (issue #5): proves the hub speaks the wire protocol the
pinned client uses — listing, whole and ranged downloads, errors — before any role relies on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port

HUB = Path(__file__).resolve().parents[2] / "roles" / "weights" / "files" / "modelscope_mirror.py"
CLIENT = Path(sys.executable).parent / "modelscope"
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


def served(log):
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
    deadline = time.time() + 20
    while time.time() < deadline and not (partial.exists() and partial.stat().st_size > 500_000):
        time.sleep(0.1)
    client.send_signal(signal.SIGKILL)  # the process dies mid-file, as on a node restart
    client.wait()
    kept = partial.stat().st_size
    assert 0 < kept < 3_000_000

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
