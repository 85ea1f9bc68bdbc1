"""The readiness watch's decisions over `docker inspect` documents and container logs."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _containers
from fake_docker_api import inspect_document, log_frames


@pytest.mark.parametrize("document, restarts_before, reason", [
    (inspect_document("s", status="exited", exit_code=2), 0, "it is exited (exit code 2)"),
    (inspect_document("s", status="restarting", exit_code=132, restarts=3), 0, "it is restarting after exit code 132"),
    (inspect_document("s", restarts=2, exit_code=137), 1, "it restarted 1 time(s) while waiting"),
    (inspect_document("s", status="exited", exit_code=137, oom=True), 0, "it was killed for lack of memory (OOM)"),
])
def test_a_container_that_cannot_become_ready_is_named_with_its_state(document, restarts_before, reason):
    problem = _containers.container_problem("s", document, restarts_before)
    assert problem.reason == reason
    assert problem.as_dict()["restart_count"] == document["RestartCount"]
    assert problem.as_dict()["exit_code"] == document["State"]["ExitCode"]


def test_a_running_container_with_the_restarts_it_had_is_still_a_candidate():
    assert _containers.container_problem("s", inspect_document("s", restarts=4), 4) is None


def test_a_removed_container_is_a_problem():
    problem = _containers.container_problem("s", None, 0)
    assert problem.status == "missing" and "no longer exists" in problem.reason


def test_network_of_a_restarted_peer_is_stale():
    serving = inspect_document("s", network_mode="container:id-node", started_at="2026-12-01T10:00:00.5Z")
    node_before = inspect_document("node", started_at="2026-12-01T09:59:00.1Z")
    node_restarted = inspect_document("node", started_at="2026-12-01T10:05:00.1Z")
    assert _containers.stale_network(serving, node_before) is None
    assert "node, which restarted at 2026-12-01T10:05:00.1Z" in _containers.stale_network(serving, node_restarted)
    # Host networking has no peer to go stale.
    assert _containers.stale_network(inspect_document("s", network_mode="host"), node_restarted) is None


def test_multiplexed_and_plain_logs_decode_to_text():
    assert _containers.decode_log_stream(log_frames(["one", "two"])) == "one\ntwo\n"
    assert _containers.decode_log_stream(b"plain tty output\n") == "plain tty output\n"


def test_secrets_are_scrubbed_from_log_lines():
    assert _containers.scrub(["key=abc123 ok", "none"], ["abc123", ""]) == ["key=******** ok", "none"]


# The first case is the tail vLLM 0.32.0 printed in the sandbox for an unknown flag; the
# others are shaped like a Python traceback and a fatal signal.
@pytest.mark.parametrize("lines, expected", [
    (["W1201 09:25:48.439000 1 torch/_library/triton.py:53] Triton not available, find_triton_kernels = []",
      "usage: vllm [-h] [-v]",
      "            {chat,complete,serve,launch,bench,collect-env,download-kernels,preload,run-batch,snapshot}",
      "            ...",
      "vllm: error: unrecognized arguments: --no-such-flag"],
     "vllm: error: unrecognized arguments: --no-such-flag"),
    (["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
      "ValueError: max_model_len (99999) is greater than the derived max_model_len (512)"],
     "ValueError: max_model_len (99999) is greater than the derived max_model_len (512)"),
    (["Fatal Python error: Illegal instruction", "Current thread 0x01 (most recent call first):"],
     "Fatal Python error: Illegal instruction"),
    (["INFO all good"], ""),
])
def test_vllms_own_error_line_is_found(lines, expected):
    assert _containers.error_line(lines) == expected
