"""benchmark_report on real result JSON in a temporary run folder: the files a run keeps, a
failed level, and the comparison of two runs."""

from __future__ import annotations

import json
import shutil

from PIL import Image

from ansible_collections.llmops.inference.plugins.modules import benchmark_report

from conftest import FIXTURES

LEVELS = [{"name": "c1", "max_concurrency": 1, "request_rate": "inf"}, {"name": "c2", "max_concurrency": 2, "request_rate": "inf"}]


def run_folder(tmp_path, name, results=("c1", "c2")):
    folder = tmp_path / name
    folder.mkdir()
    for level in results:
        shutil.copy(FIXTURES / "vllm_bench" / ("level-%s.json" % level), folder)
    return folder


def report(run_module, folder, **args):
    return run_module(benchmark_report.main, dict({"run_dir": str(folder), "levels": LEVELS, "num_prompts": 6,
                                                   "metadata": {"model": "tiny-qwen", "inventory": "sandbox"}}, **args))


def test_a_run_keeps_its_csv_table_plot_and_record(tmp_path, run_module):
    folder = run_folder(tmp_path, "monday")
    result, failed = report(run_module, folder)
    assert not failed and result["changed"] and result["problems"] == []
    assert (folder / "summary.csv").read_text().splitlines()[1].startswith("c1,1,inf,")
    assert (folder / "summary.md").read_text().strip() == result["table"]
    assert Image.open(folder / "benchmark.png").format == "PNG"
    record = json.loads((folder / "run.json").read_text())
    assert record["model"] == "tiny-qwen" and record["num_prompts"] == 6 and [level["name"] for level in record["levels"]] == ["c1", "c2"]


def test_check_mode_reports_and_writes_nothing(tmp_path, run_module):
    folder = run_folder(tmp_path, "monday")
    result, failed = report(run_module, folder, _ansible_check_mode=True)
    assert not failed and not result["changed"] and "| Successful requests | 6 | 6 |" in result["table"]
    assert sorted(path.name for path in folder.iterdir()) == ["level-c1.json", "level-c2.json"]


def test_a_missing_level_or_a_failed_request_fails_after_keeping_the_rest(tmp_path, run_module):
    folder = run_folder(tmp_path, "broken", results=("c1",))
    result, failed = report(run_module, folder, num_prompts=7)
    assert failed
    assert any("level c2: no result" in problem for problem in result["problems"])
    assert any("level c1: 6 of 7 request(s) succeeded" in problem for problem in result["problems"])
    assert (folder / "summary.csv").exists() and (folder / "benchmark.png").exists()


def test_two_runs_compare_with_a_ratio_per_metric_in_the_after_folder(tmp_path, run_module):
    before, after = run_folder(tmp_path, "monday"), run_folder(tmp_path, "tuesday")
    report(run_module, before)
    report(run_module, after)
    # The compare playbook passes the two folders alone: levels and counts come from run.json.
    result, failed = run_module(benchmark_report.main, {"run_dir": str(after), "baseline_dir": str(before)})
    assert not failed, result
    assert {entry["verdict"] for entry in result["compare"]} == {"same"}
    assert result["compare_table"].startswith("| Level | Metric | monday (before) | tuesday (after) | after / before |")
    assert (after / "compare-monday.md").exists() and (after / "compare-monday.csv").exists()
    assert Image.open(after / "compare-monday.png").size == (1200, 800)


def test_a_folder_no_run_wrote_is_named(tmp_path, run_module):
    result, failed = run_module(benchmark_report.main, {"run_dir": str(tmp_path)})
    assert failed and "holds no run.json" in result["msg"]


def test_a_baseline_cut_short_compares_on_the_levels_it_finished(tmp_path, run_module):
    before, after = run_folder(tmp_path, "monday", results=("c1",)), run_folder(tmp_path, "tuesday")
    report(run_module, before)
    result, failed = report(run_module, after, baseline_dir=str(before))
    assert not failed, result
    assert {entry["level"] for entry in result["compare"]} == {"c1"} and result["differences"] == []


def test_comparing_folders_warns_about_an_after_run_cut_short(tmp_path, run_module):
    before, after = run_folder(tmp_path, "monday"), run_folder(tmp_path, "tuesday", results=("c1",))
    report(run_module, before)
    report(run_module, after)
    result, failed = run_module(benchmark_report.main, {"run_dir": str(after), "baseline_dir": str(before)})
    assert not failed and {entry["level"] for entry in result["compare"]} == {"c1"}
