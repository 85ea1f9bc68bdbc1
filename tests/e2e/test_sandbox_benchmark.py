"""End to end: playbooks/benchmark.yml measures the sandbox's real endpoint with vLLM's own
`vllm bench serve`, the API key on, and keeps the results on this machine. Small numbers (a
few prompts, two concurrency levels): the tiny random model's figures measure the harness,
not a model. Each run leaves one folder; the second compares itself with the first."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import HEAD, KEY_FILE, docker_inspect, run_playbook

SERVING = HEAD + "-vllm"
WORKER = "llmops-sandbox-worker"
SWEEP = {"vllm_benchmark_concurrency": [1, 2], "vllm_benchmark_num_prompts": 4,
         "vllm_benchmark_input_len": 32, "vllm_benchmark_output_len": 16}


def benchmark(results, *extra, playbook="playbooks/benchmark.yml", expect_failure=False, **settings):
    variables = dict(SWEEP, vllm_benchmark_results_dir=str(results), **settings)
    return run_playbook(playbook, "-e", json.dumps(variables), *extra, expect_failure=expect_failure)


def run_folders(results):
    return sorted(path for path in Path(results).iterdir() if path.is_dir()) if Path(results).exists() else []


def assert_a_complete_run(folder, output, key):
    for level in ("c1", "c2"):
        result = json.loads((folder / ("level-%s.json" % level)).read_text())
        assert result["completed"] == 4 and result["failed"] == 0 and result["max_concurrency"] == int(level[1:])
        assert result["model_id"] == "tiny-qwen" and result["total_output_tokens"] == 4 * 16
    with open(folder / "summary.csv", encoding="utf-8") as handle:
        assert [row["level"] for row in csv.DictReader(handle)] == ["c1", "c2"]
    image = Image.open(folder / "benchmark.png")
    assert image.format == "PNG" and image.size == (1200, 800)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50, "the plot is blank"
    record = json.loads((folder / "run.json").read_text())
    assert record["inventory"] == "sandbox" and record["model"] == "tiny-qwen"
    assert record["spec_hash"] == docker_inspect(SERVING)["Config"]["Labels"]["org.llmops.spec-hash"]
    assert record["image"] == docker_inspect(SERVING)["Config"]["Image"]
    assert "| Successful requests | 4 | 4 |" in output and "Plot: %s/benchmark.png" % folder in output
    assert "level 2/2 c2: 4/4 requests ok" in output
    texts = {"the output": output}
    texts.update({path.name: path.read_text() for path in folder.iterdir() if path.suffix != ".png"})
    assert not [name for name, text in texts.items() if key in text], "the API key appears"


def nothing_left_on_the_head(node=HEAD):
    scratch = Path("/var/tmp/llmops-sandbox") / node / "benchmark"
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.llmops.role=vllm_benchmark"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return not left and (not scratch.exists() or not any(scratch.iterdir()))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("benchmark-results")


@pytest.fixture(scope="module")
def first_run(results):
    serving = docker_inspect(SERVING)["Id"]
    # -v prints every task's result: the key must stay out of them too.
    output, recap = benchmark(results, "-v")
    assert recap[HEAD]["failed"] == 0
    assert docker_inspect(SERVING)["Id"] == serving, "the benchmark touched the serving container"
    (folder,) = run_folders(results)
    return folder, output


def test_a_benchmark_run_measures_the_endpoint_with_its_key(first_run):
    folder, output = first_run
    assert_a_complete_run(folder, output, KEY_FILE.read_text().strip())
    assert nothing_left_on_the_head()


def test_deploy_tags_benchmark_compares_with_the_first_run(first_run, results):
    folder, _output = first_run
    output, recap = benchmark(results, "--tags", "benchmark", playbook="deploy.yml", vllm_benchmark_baseline=str(folder))
    assert all(counts["failed"] == 0 for counts in recap.values()), recap
    # Only preflight and the benchmark ran: no other phase's task, nothing changed on the worker.
    assert "TASK [llmops.inference.vllm_serve : Read the node" not in output and recap["llmops-sandbox-worker"]["changed"] == 0
    second = [path for path in run_folders(results) if path != folder][0]
    assert_a_complete_run(second, output, KEY_FILE.read_text().strip())
    assert "| c1 | Output token throughput (tok/s) |" in output and "after / before" in output
    assert Image.open(second / ("compare-%s.png" % folder.name)).size == (1200, 800)
    # The same comparison from the two folders alone, on the control node.
    compared, _recap = run_playbook("playbooks/benchmark_compare.yml", "-e", "before=%s" % folder, "-e", "after=%s" % second)
    with open(second / ("compare-%s.csv" % folder.name), encoding="utf-8") as handle:
        entries = list(csv.DictReader(handle))
    assert {entry["level"] for entry in entries} == {"c1", "c2"}
    assert all(float(entry["ratio"]) > 0 and entry["verdict"] in ("better", "worse", "same") for entry in entries)
    assert "Comparison plot: %s/compare-%s.png" % (second, folder.name) in compared
    assert nothing_left_on_the_head()


@pytest.mark.parametrize("settings, expected", [
    ({"vllm_benchmark_concurrency": [0, 2]}, "vllm_benchmark_concurrency=[0, 2] holds 0"),
    ({"vllm_benchmark_output_len": 600}, "above the max_model_len 512 that http://172.30.20.2:8000 serves"),
    # Nothing listens on that port: the endpoint as the head would be asked for it is not ready.
    ({"vllm_serve_port": 8999, "vllm_benchmark_ready_timeout": 3}, "is not ready from llmops-sandbox-head"),
    # A typo is refused, never added to the inventory as a new host.
    ({"vllm_benchmark_node": "llmops-sandbox-wrker"}, "vllm_benchmark_node=llmops-sandbox-wrker is not a host of inference_cluster"),
], ids=["concurrency-0", "output-above-max-model-len", "endpoint-not-ready", "unknown-node"])
def test_bad_input_stops_before_any_benchmark_request(tmp_path, settings, expected):
    output, _recap = benchmark(tmp_path, expect_failure=True, **settings)
    assert expected in " ".join(output.split()), output[-2000:]
    assert "Fix:" in output
    assert "TASK [llmops.inference.vllm_benchmark : Run vllm bench serve" not in output
    assert run_folders(tmp_path) == []


def test_check_mode_checks_everything_and_sends_no_benchmark_request(tmp_path):
    output, recap = benchmark(tmp_path, "--check")
    assert recap[HEAD]["failed"] == 0 and recap[HEAD]["changed"] == 0, recap
    assert "Check mode: would run 2 level(s) (c1, c2) of 4 request(s) against http://172.30.20.2:8000" in " ".join(output.split())
    assert run_folders(tmp_path) == [] and nothing_left_on_the_head()


def test_a_worker_runs_a_rate_sweep_over_the_operators_own_prompts(tmp_path):
    """From the worker (its own copy of the tokenizer, its own network), the operator's prompts
    copied from the control node, one request rate and no concurrency cap. A JSONL file is
    refused first: vLLM reads it with pandas, which the CPU image has not."""
    questions = ["Question %d: what is the capital of France, and why?" % number for number in range(8)]
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt": question}) + "\n" for question in questions))
    sharegpt = tmp_path / "prompts.json"
    sharegpt.write_text(json.dumps([{"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": "Paris."}]}
                                    for question in questions]))
    results = tmp_path / "results"
    sweep = {"vllm_benchmark_node": WORKER, "vllm_benchmark_concurrency": [], "vllm_benchmark_request_rates": [20]}
    output, _recap = benchmark(results, expect_failure=True, vllm_benchmark_dataset="custom",
                               vllm_benchmark_dataset_file=str(jsonl), **sweep)
    assert "has no pandas" in output and "vllm_benchmark_dataset: sharegpt" in " ".join(output.split())
    assert "TASK [llmops.inference.vllm_benchmark : Run vllm bench serve" not in output
    output, recap = benchmark(results, vllm_benchmark_dataset="sharegpt", vllm_benchmark_dataset_file=str(sharegpt), **sweep)
    assert recap[WORKER]["failed"] == 0, output[-3000:]
    (folder,) = run_folders(results)
    result = json.loads((folder / "level-r20.json").read_text())
    assert result["completed"] == 4 and result["failed"] == 0 and result["request_rate"] == 20.0
    assert result["max_concurrency"] is None and json.loads((folder / "run.json").read_text())["node"] == WORKER
    assert Image.open(folder / "benchmark.png").size == (1200, 800)
    assert "level 1/1 r20: 4/4 requests ok" in output
    assert nothing_left_on_the_head(WORKER)
