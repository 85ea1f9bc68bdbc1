"""endpoint_ready against a real HTTP server on loopback that becomes ready after a delay."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _readiness
from ansible_collections.llmops.inference.plugins.modules import endpoint_ready
from conftest import fixture_text, free_port

SERVER = Path(__file__).resolve().parents[3] / "fixtures" / "fake_openai_server.py"


@pytest.fixture
def server(tmp_path, spawn):
    """start(**options) -> (base_url, ready_file)."""

    def start(ready_after=0.0, never_list=False, api_key="sekret-key"):
        port = free_port()
        ready_file = tmp_path / ("ready-%d" % port)
        argv = [sys.executable, str(SERVER), "--port", str(port), "--model", "tiny-qwen", "--api-key", api_key,
                "--ready-after", str(ready_after), "--ready-file", str(ready_file)]
        if never_list:
            argv.append("--never-list")
        spawn(argv, port)
        return "http://127.0.0.1:%d" % port, ready_file

    return start


def test_ready_within_one_poll_interval_of_real_readiness(server, run_module):
    url, ready_file = server(ready_after=2.0)
    poll_interval = 0.5
    result, failed = run_module(
        endpoint_ready.main,
        {"url": url, "model": "tiny-qwen", "api_key": "sekret-key", "timeout": 30, "poll_interval": poll_interval},
    )
    assert not failed, result
    really_ready_at = float(ready_file.read_text())
    assert 0 <= result["ready_at"] - really_ready_at <= poll_interval + 0.25
    assert result["polls"] > 1 and result["time_to_ready"] >= 1.5
    assert result["models"] == ["tiny-qwen"] and result["max_model_len"] == 512


def test_model_never_listed_fails_naming_the_condition(server, run_module):
    url, _ready_file = server(never_list=True)
    result, failed = run_module(
        endpoint_ready.main,
        {"url": url, "model": "tiny-qwen", "api_key": "sekret-key", "timeout": 2, "poll_interval": 0.5},
    )
    assert failed
    assert result["failed_condition"] == "model_listed"
    assert "model 'tiny-qwen' not served; /v1/models lists nothing" in result["msg"]
    assert result["polls"] >= 3


def test_a_key_the_server_refuses_fails_at_once_as_a_key_mismatch(server, run_module):
    """A 401 is no slow start (a rotated key the container does not hold): the first poll that
    sees it ends the wait, however long the timeout."""
    url, _ready_file = server()
    started = time.monotonic()
    result, failed = run_module(
        endpoint_ready.main, {"url": url, "model": "tiny-qwen", "api_key": "wrong", "timeout": 300, "poll_interval": 1}
    )
    assert failed and result["failed_condition"] == "api_key" and result["key_mismatch"] is True
    assert result["polls"] == 1 and time.monotonic() - started < 5
    assert "answered 401" in result["last_error"] and "A key mismatch, reported at once" in result["msg"]


def test_nothing_listening_fails_at_health(run_module):
    result, failed = run_module(
        endpoint_ready.main, {"url": "http://127.0.0.1:%d" % free_port(), "model": "m", "timeout": 0}
    )
    assert failed and result["failed_condition"] == "health" and result["polls"] == 1


def test_api_key_is_declared_no_log():
    assert "no_log=True" in Path(endpoint_ready.__file__).read_text().split("api_key=dict(")[1].split(")")[0]


def test_real_vllm_models_answer_parses():
    models = _readiness.parse_models(fixture_text("vllm/models-llama31.json"))
    assert models == {"meta-llama/Meta-Llama-3.1-8B-Instruct": 8096}


@pytest.mark.parametrize(
    "answers, condition",
    [
        ({"/health": (503, "")}, "health"),
        ({"/health": (200, ""), "/v1/models": (200, "not json")}, "model_listed"),
        ({"/health": (200, ""), "/v1/models": (200, '{"data": [{"id": "other"}]}')}, "model_listed"),
        (
            {"/health": (200, ""), "/v1/models": (200, '{"data": [{"id": "m"}]}'),
             "/v1/completions": (200, '{"choices": []}')},
            "completion",
        ),
        (
            {"/health": (200, ""), "/v1/models": (200, '{"data": [{"id": "m"}]}'),
             "/v1/completions": (500, "engine dead")},
            "completion",
        ),
    ],
)
def test_first_unmet_condition_is_named(answers, condition):
    def get(url):
        return answers[url[len("http://x"):]]

    def post(url, payload):
        assert payload == {"model": "m", "prompt": "ping", "max_tokens": 1, "temperature": 0}
        return answers[url[len("http://x"):]]

    poll = _readiness.evaluate(get, post, "http://x", "m", check_completion=True)
    assert poll.failed_condition == condition and poll.error


def test_completion_check_can_be_turned_off():
    answers = {"/health": (200, ""), "/v1/models": (200, '{"data": [{"id": "m", "max_model_len": 4096}]}')}
    poll = _readiness.evaluate(lambda url: answers[url[8:]], None, "http://x", "m", check_completion=False)
    assert poll.ready and poll.models == {"m": 4096}


def test_a_crashed_container_stops_the_wait_at_once_with_its_evidence(server, run_module, docker):
    from fake_docker_api import inspect_document

    url, _ready_file = server(ready_after=60)
    docker.containers["vllm-serve"] = inspect_document("vllm-serve", status="restarting", exit_code=2, restarts=3)
    docker.logs["vllm-serve"] = ["INFO starting with key sekret-key", "vllm serve: error: unrecognized arguments: --bad"]
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "api_key": "sekret-key", "timeout": 60, "poll_interval": 0.2,
        "containers": ["vllm-serve"], "docker_host": docker.docker_host,
    })
    assert failed and result["polls"] == 1
    problem = result["container_problem"]
    assert problem["status"] == "restarting" and problem["exit_code"] == 2 and problem["restart_count"] == 3
    assert problem["error_line"] == "vllm serve: error: unrecognized arguments: --bad"
    assert "vLLM said: vllm serve: error: unrecognized arguments: --bad" in result["msg"]
    assert problem["log_tail"][0] == "INFO starting with key ********"
    assert not problem["stale_network"]


def test_a_restart_during_the_wait_is_noticed_within_one_poll(server, run_module, docker):
    import threading

    from fake_docker_api import inspect_document

    url, _ready_file = server(ready_after=60)
    docker.containers["vllm-serve"] = inspect_document("vllm-serve", restarts=1)
    crash = threading.Timer(1.0, lambda: docker.containers.update(
        {"vllm-serve": inspect_document("vllm-serve", restarts=2, exit_code=132)}))
    crash.start()
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "api_key": "sekret-key", "timeout": 60, "poll_interval": 0.25,
        "containers": ["vllm-serve"], "restart_counts": {"vllm-serve": 1}, "docker_host": docker.docker_host,
    })
    crash.join()
    assert failed and "restarted 1 time(s) while waiting" in result["msg"]
    assert result["polls"] <= 1.0 / 0.25 + 2


def test_a_stale_network_namespace_is_reported_for_repair(server, run_module, docker):
    from fake_docker_api import inspect_document

    url, _ready_file = server(ready_after=60)
    docker.containers["vllm-serve"] = inspect_document(
        "vllm-serve", network_mode="container:id-node", started_at="2026-12-01T10:00:00Z")
    docker.containers["node"] = inspect_document("node", started_at="2026-12-01T11:00:00Z")
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "timeout": 60, "containers": ["vllm-serve"],
        "docker_host": docker.docker_host,
    })
    assert failed and result["container_problem"]["stale_network"]
    assert "shares the network of node, which restarted" in result["msg"]


def test_report_every_returns_progress_while_a_healthy_container_starts(server, run_module, docker):
    from fake_docker_api import inspect_document

    url, _ready_file = server(ready_after=60)
    docker.containers["vllm-serve"] = inspect_document("vllm-serve")
    started = time.time()
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "api_key": "sekret-key", "timeout": 60, "poll_interval": 0.2,
        "report_every": 0.5, "containers": ["vllm-serve"], "docker_host": docker.docker_host,
    })
    assert not failed and not result["ready"] and result["failed_condition"] == "health"
    # The window lasts report_every, whatever the poll interval: retries x report_every = timeout.
    assert 0.5 <= time.time() - started < 1.5 and result["polls"] >= 3
    assert result["progress"].startswith("tiny-qwen not ready: health (GET /health answered 503")
    assert result["progress"].endswith("vllm-serve running, 0 restart(s)")


def test_a_container_not_in_restart_counts_is_counted_from_the_first_poll(server, run_module, docker):
    import threading

    from fake_docker_api import inspect_document

    url, _ready_file = server(ready_after=60)
    docker.containers["vllm-serve"] = inspect_document("vllm-serve", restarts=5)  # crashes before this run
    crash = threading.Timer(1.0, lambda: docker.containers.update(
        {"vllm-serve": inspect_document("vllm-serve", restarts=6)}))
    crash.start()
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "timeout": 60, "poll_interval": 0.25,
        "containers": ["vllm-serve"], "docker_host": docker.docker_host,
    })
    crash.join()
    assert failed and "restarted 1 time(s) while waiting" in result["msg"] and result["polls"] > 1


def test_a_window_longer_than_the_poll_interval_still_lasts_report_every(server, run_module):
    url, _ready_file = server(ready_after=60)
    started = time.time()
    result, failed = run_module(endpoint_ready.main, {
        "url": url, "model": "tiny-qwen", "timeout": 60, "poll_interval": 5, "report_every": 1,
    })
    assert not failed and not result["ready"] and 1 <= time.time() - started < 2 and result["polls"] == 2
