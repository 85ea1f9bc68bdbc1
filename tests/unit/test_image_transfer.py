"""The serving image's copy between nodes: roles/serving_image/files/image_mirror.py (saves the
image and serves the archive while it is written) and image_fetch.py (loads what arrives), run
as processes over loopback. A stand-in `docker` script takes the engine's place: `save` writes a
known archive slowly (so the copy really overlaps the save), `load` keeps what it read. The real
engines are used by the end-to-end test (tests/e2e/test_sandbox_image.py) and `make bench-image`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port, wait_listening

FILES = Path(__file__).resolve().parents[2] / "roles" / "serving_image" / "files"
MIRROR, FETCHER = FILES / "image_mirror.py", FILES / "image_fetch.py"
IMAGE_ID = "sha256:" + "ab" * 32
STAND_IN = """#!/bin/sh
# save: the archive in 8 slow pieces (or a failure); load: keep stdin, answer as docker does.
case "$1" in
save) [ -n "$SAVE_FAILS" ] && { echo "Error response from daemon: no such image: $2" >&2; exit 1; }
      for piece in 0 1 2 3 4 5 6 7; do dd if="$ARCHIVE" bs=65536 skip=$((piece * 8)) count=8 2>/dev/null; sleep 0.1; done ;;
load) cat > "$LOADED" && echo "Loaded image ID: %s" ;;
esac
""" % IMAGE_ID


@pytest.fixture
def engines(tmp_path):
    archive = tmp_path / "archive.tar"
    archive.write_bytes(os.urandom(8 * 8 * 65536))
    docker = tmp_path / "docker"
    docker.write_text(STAND_IN)
    docker.chmod(0o755)
    environ = dict(os.environ, ARCHIVE=str(archive), LOADED=str(tmp_path / "loaded.tar"))
    return {"docker": str(docker), "archive": archive, "loaded": tmp_path / "loaded.tar", "env": environ,
            "build_dir": tmp_path / "build", "node_dir": tmp_path / "node"}


def start_mirror(engines, spawned, **env):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(MIRROR), "--port", str(port), "--image", IMAGE_ID,
                                "--dir", str(engines["build_dir"]), "--docker", engines["docker"]],
                               env=dict(engines["env"], **env), stdout=subprocess.PIPE, text=True)
    spawned.append(process)
    wait_listening(port, "image_mirror.py")
    return "http://127.0.0.1:%d" % port


def fetch(engines, endpoint):
    return subprocess.run([sys.executable, str(FETCHER), "--endpoint", endpoint, "--dest", str(engines["node_dir"]),
                           "--docker", engines["docker"], "--attempts", "2"], env=engines["env"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def spawned():
    processes = []
    yield processes
    for process in processes:
        process.terminate()
        process.wait()


def test_the_copy_loads_the_archive_while_it_is_saved_and_checks_its_hash(engines, spawned):
    endpoint = start_mirror(engines, spawned)
    copied = fetch(engines, endpoint)
    assert copied.returncode == 0, copied.stderr
    expected = engines["archive"].read_bytes()
    assert engines["loaded"].read_bytes() == expected
    result = json.loads((engines["node_dir"] / "fetched.json").read_text())
    assert result["sha256"] == hashlib.sha256(expected).hexdigest() and result["size"] == len(expected)
    assert result["image_id"] == IMAGE_ID and result["load_output"] == "Loaded image ID: " + IMAGE_ID
    # The build node keeps the archive and its marker, so a mirror started again saves nothing.
    marker = json.loads((engines["build_dir"] / ".llmops-weights.json").read_text())
    assert marker["image_id"] == IMAGE_ID and marker["files"][0]["sha256"] == result["sha256"]
    assert (engines["build_dir"] / "image.tar").read_bytes() == expected


def test_an_interrupted_copy_loads_what_it_kept_and_fetches_only_the_rest(engines, spawned):
    endpoint = start_mirror(engines, spawned)
    assert fetch(engines, endpoint).returncode == 0
    spawned[0].terminate()
    spawned[0].wait()
    # A copy cut at 1.5 MB of the same archive: the mirror, started again, serves the file it kept.
    expected = engines["archive"].read_bytes()
    (engines["node_dir"] / "image.tar.part").write_bytes(expected[:1_500_000])
    (engines["node_dir"] / "fetched.json").unlink()
    # A second save would fail the copy: none must run.
    endpoint = start_mirror(engines, spawned, SAVE_FAILS="1")
    copied = fetch(engines, endpoint)
    assert copied.returncode == 0, copied.stderr
    assert "loaded the 1500000 bytes an earlier copy kept" in copied.stdout
    assert engines["loaded"].read_bytes() == expected


def test_bytes_kept_from_another_archive_are_not_put_together_with_this_one(engines, spawned):
    engines["node_dir"].mkdir()
    (engines["node_dir"] / "image.tar.part").write_bytes(b"x" * 700_000)
    (engines["node_dir"] / "image.tar.source").write_text("an-archive-of-an-earlier-save\n")
    copied = fetch(engines, start_mirror(engines, spawned))
    assert copied.returncode == 0, copied.stderr
    assert "belong to another archive: starting again" in copied.stdout
    assert engines["loaded"].read_bytes() == engines["archive"].read_bytes()


def test_a_failed_save_fails_the_copy_with_the_engines_message(engines, spawned):
    copied = fetch(engines, start_mirror(engines, spawned, SAVE_FAILS="1"))
    assert copied.returncode == 1
    assert "docker save %s failed (exit 1): Error response from daemon: no such image" % IMAGE_ID in copied.stderr
    assert not (engines["node_dir"] / "fetched.json").exists()
