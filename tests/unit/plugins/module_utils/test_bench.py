"""The benchmark's decisions and reports on vLLM's real result JSON (tests/unit/fixtures/vllm_bench)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ansible_collections.llmops.inference.plugins.module_utils import _bench

from conftest import FIXTURES

SETTINGS = {"node": "", "concurrency": [1, 2], "request_rates": [], "num_prompts": 6, "dataset": "random",
            "dataset_file": "", "input_len": 32, "output_len": 16, "ignore_eos": True, "seed": 0, "extra_args": [],
            "baseline": ""}
HOSTS = ["head", "worker"]


def result(name):
    return json.loads((FIXTURES / "vllm_bench" / ("level-%s.json" % name)).read_text())


def rows():
    return [_bench.level_row(name, result(name)) for name in ("c1", "c2")]


def problems(**changes):
    return _bench.input_problems(dict(SETTINGS, **changes), HOSTS, lambda path: path == "/data/share.json")


@pytest.mark.parametrize("concurrency, rates, expected", [
    ([1, 4], [], [("c1", 1, "inf"), ("c4", 4, "inf")]),
    ([], [10, "2.5", "inf"], [("r10", None, "10"), ("r2.5", None, "2.5"), ("rinf", None, "inf")]),
    ([8], [10], [("c8-r10", 8, "10")]),
])
def test_the_sweep_is_every_pair_of_concurrency_and_rate(concurrency, rates, expected):
    assert [(level["name"], level["max_concurrency"], level["request_rate"])
            for level in _bench.levels(concurrency, rates)] == expected


def test_good_settings_pass():
    assert problems() == []
    assert problems(dataset="sharegpt", dataset_file="/data/share.json", input_len=0) == []


@pytest.mark.parametrize("changes, expected", [
    ({"concurrency": [0, 4]}, "vllm_benchmark_concurrency=[0, 4] holds 0"),
    ({"concurrency": [], "request_rates": []}, "nothing to sweep"),
    ({"request_rates": [0]}, "vllm_benchmark_request_rates=[0] holds 0"),
    ({"request_rates": ["fast"]}, "holds fast"),
    ({"num_prompts": 0}, "vllm_benchmark_num_prompts=0"),
    ({"output_len": -1}, "vllm_benchmark_output_len=-1"),
    ({"input_len": 0}, "vllm_benchmark_input_len=0"),
    ({"dataset": "sharegpt"}, "vllm_benchmark_dataset_file is empty"),
    ({"dataset": "custom", "dataset_file": "/data/missing.jsonl"}, "no such file on the control node"),
    ({"dataset": "sharegpt", "dataset_file": "share.json"}, "an absolute path is needed"),
    ({"dataset_file": "/data/share.json"}, "makes its own prompts"),
    ({"node": "gpu9"}, "vllm_benchmark_node=gpu9 is not a host of inference_cluster (head, worker)"),
    ({"baseline": "/results/old"}, "vllm_benchmark_baseline=/results/old holds no run.json"),
    ({"concurrency": [4, 4]}, "give the level(s) c4 twice"),
    ({"concurrency": [], "request_rates": [10, "10.0"]}, "give the level(s) r10 twice"),
])
def test_bad_settings_are_refused_with_the_variable_the_value_and_a_fix(changes, expected):
    found = problems(**changes)
    assert len(found) == 1 and expected in found[0] and "Fix" in found[0], found


@pytest.mark.parametrize("changes, max_model_len, refused", [
    ({}, 512, False),
    ({"input_len": 496, "output_len": 16}, 512, False),
    ({"input_len": 497, "output_len": 16}, 512, True),
    ({"output_len": 600}, 512, True),
    ({"dataset": "custom", "input_len": 4096, "output_len": 500}, 512, False),
    ({"output_len": 600}, None, False),
])
def test_lengths_must_fit_the_context_the_endpoint_serves(changes, max_model_len, refused):
    found = _bench.length_problems(dict(SETTINGS, **changes), max_model_len, "http://10.0.0.1:8000")
    assert bool(found) is refused
    if refused:
        assert "above the max_model_len 512 that http://10.0.0.1:8000 serves" in found[0] and "vllm_serve_max_model_len" in found[0]


def test_the_argv_carries_the_level_and_never_a_key():
    level = _bench.levels([4], [])[0]
    argv = _bench.bench_argv(level, SETTINGS, "http://10.0.0.1:8000", "tiny-qwen", "level-c4.json")
    joined = " ".join(argv)
    assert "--max-concurrency 4" in joined and "--request-rate inf" in joined and "--random-input-len 32" in joined
    assert "--output-len 16" in joined and "--ignore-eos" in argv and "--dataset-path" not in argv
    assert "--result-filename level-c4.json" in joined and "--base-url http://10.0.0.1:8000" in joined
    assert not any("key" in arg.lower() for arg in argv)
    file_argv = _bench.bench_argv(_bench.levels([], [5])[0], dict(SETTINGS, dataset="sharegpt", ignore_eos=False),
                                  "http://h:8000", "m", "level-r5.json", "/data/share.json")
    assert "--max-concurrency" not in file_argv and "--random-input-len" not in file_argv and "--ignore-eos" not in file_argv
    assert file_argv[file_argv.index("--dataset-path") + 1] == "/data/share.json"


def test_a_level_row_keeps_vllms_figures_and_the_per_request_decode_rate():
    row = _bench.level_row("c2", result("c2"))
    assert row["completed"] == 6 and row["failed"] == 0 and row["max_concurrency"] == 2 and row["request_rate"] == "inf"
    assert row["output_throughput"] == pytest.approx(94.19, abs=0.01)
    assert row["decode_throughput_per_request"] == pytest.approx(1000 / result("c2")["mean_tpot_ms"])
    assert _bench.level_problems("c2", result("c2"), 6) == []
    assert "5 of 6 request(s) succeeded, 1 failed" in _bench.level_problems("c2", dict(result("c2"), completed=5, failed=1), 6)[0]
    line = _bench.level_line(2, 2, row)
    assert line.startswith("level 2/2 c2: 6/6 requests ok") and "TTFT median 46.0 ms" in line


def test_the_csv_and_the_table_hold_one_level_each():
    text = _bench.to_csv(rows())
    lines = text.splitlines()
    assert lines[0].startswith("level,max_concurrency,request_rate,") and [line.split(",")[0] for line in lines[1:]] == ["c1", "c2"]
    table = _bench.markdown_table(rows()).splitlines()
    assert table[0] == "| Metric | c1 | c2 |"
    assert "| Successful requests | 6 | 6 |" in table and any(line.startswith("| P99 TPOT (ms) |") for line in table)


def test_the_comparison_gives_the_ratio_and_which_way_is_better():
    before = rows()
    after = [dict(row, output_throughput=row["output_throughput"] * 2, p99_ttft_ms=row["p99_ttft_ms"] * 2) for row in before]
    entries = {(entry["level"], entry["metric"]): entry for entry in _bench.compare(before, after)}
    assert entries[("c1", "output_throughput")]["ratio"] == pytest.approx(2.0)
    assert entries[("c1", "output_throughput")]["verdict"] == "better"
    assert entries[("c2", "p99_ttft_ms")]["verdict"] == "worse"
    assert entries[("c2", "median_tpot_ms")]["verdict"] == "same"
    table = _bench.compare_markdown(list(entries.values()), "monday", "tuesday")
    assert "| c1 | Output token throughput (tok/s) | 54.38 | 108.76 | 2.000 | better |" in table
    assert _bench.compare(before, [dict(before[0], level="c64")]) == []
    assert "share no level" in _bench.compare_markdown([], "monday", "tuesday")
    from_zero = _bench.compare([dict(before[0], output_throughput=0.0)], [before[0]])
    assert [entry["verdict"] for entry in from_zero if entry["metric"] == "output_throughput"] == ["better"]


def test_runs_of_different_workloads_are_compared_with_a_note():
    record = {"model": "tiny-qwen", "settings": dict(SETTINGS)}
    other = {"model": "tiny-qwen", "settings": dict(SETTINGS, output_len=32)}
    assert _bench.record_differences(record, record) == []
    differences = _bench.record_differences(record, other)
    assert differences == ["output_len 16 -> 32"]
    assert _bench.compare_markdown([], "a", "b", differences).startswith("Note: the two runs measured different workloads")


def test_the_plot_is_a_png_with_four_panels_drawn(tmp_path):
    path = tmp_path / "plot.png"
    _bench.plot([("", rows())], str(path), "run")
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (1200, 800)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50, "the plot is blank"


def test_a_rate_sweep_is_plotted_against_the_rate_and_inf_gets_a_place(tmp_path):
    swept = [dict(row, max_concurrency=None, request_rate=rate, level=name)
             for row, rate, name in zip(rows(), ["10", "inf"], ["r10", "rinf"])]
    assert _bench.x_axis(swept)[0] == "request_rate"
    _bench.plot([("before", rows()), ("after", rows())], str(tmp_path / "compare.png"), "compare")
    _bench.plot([("", swept)], str(tmp_path / "rates.png"), "rates")
    assert Image.open(tmp_path / "rates.png").size == (1200, 800)


def test_run_folders_sort_by_time_and_are_file_safe():
    assert _bench.run_folder_name("20261201T230021Z", "prod", "Qwen/Qwen3-32B", "80e179fffc95") == \
        "20261201T230021Z-prod-Qwen_Qwen3-32B-80e179ff"
