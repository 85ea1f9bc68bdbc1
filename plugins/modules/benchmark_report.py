#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: benchmark_report
short_description: Summarize a benchmark run's vLLM results into a CSV, a Markdown table and a PNG plot, and compare two runs
version_added: 0.1.0
description:
  - Reads the result JSON that C(vllm bench serve --save-result) wrote for each level of a run
    (C(level-<name>.json) in O(run_dir)) and writes, in the same folder, C(summary.csv) (one
    line per level), C(summary.md) (the metrics VastAI's deployment guide reports, one column per level),
    C(benchmark.png) (output and request throughput, TTFT and TPOT median and p99 against
    concurrency or request rate) and C(run.json) (O(metadata), the levels and the prompts per level).
  - With O(baseline_dir), also compares the run with an earlier one - C(compare-<baseline>.md),
    C(.csv) and C(.png) in O(run_dir), with the ratio after / before per level and metric.
  - Fails when a level is missing or any of its requests failed, after writing what it could,
    so the evidence stays in the folder. A baseline cut short compares on the levels it has, with a warning.
  - Runs on the control node (delegated to localhost) and needs matplotlib in that Python
    (tools/controller-requirements.txt).
author:
  - llmops.inference maintainers (@llmops)
options:
  run_dir:
    description: The run's folder on the control node.
    type: path
    required: true
  levels:
    description:
      - The levels the run asked for, each with C(name), C(max_concurrency) and C(request_rate).
      - Empty reads them from the folder's C(run.json) (a folder an earlier run wrote).
    type: list
    elements: dict
    default: []
  num_prompts:
    description: Requests per level; every one must have succeeded. 0 reads it from C(run.json).
    type: int
    default: 0
  metadata:
    description: What identifies the run (time, inventory, model, image, spec hash, endpoint); kept in C(run.json).
    type: dict
    default: {}
  baseline_dir:
    description: An earlier run's folder to compare this one with; empty compares nothing.
    type: path
    default: ""
attributes:
  check_mode:
    description: Reads the results and reports the table; writes nothing.
    support: full
  diff_mode:
    description: The files are new each run; no diff.
    support: none
"""

EXAMPLES = r"""
- name: Summarize the run and compare it with last week's
  llmops.inference.benchmark_report:
    run_dir: benchmark-results/20261201T101500Z-prod-qwen3-32b
    levels:
      - {name: c1, max_concurrency: 1, request_rate: inf}
      - {name: c16, max_concurrency: 16, request_rate: inf}
    num_prompts: 200
    metadata: {model: qwen3-32b, inventory: prod}
    baseline_dir: benchmark-results/20261124T101500Z-prod-qwen3-32b
  delegate_to: localhost
"""

RETURN = r"""
rows:
  description: One summary per level (vLLM's metrics, the level's name).
  returned: always
  type: list
  elements: dict
table:
  description: The Markdown table of the run, as in C(summary.md).
  returned: always
  type: str
plot:
  description: Path of the run's PNG plot.
  returned: always
  type: str
  sample: benchmark-results/20261201T101500Z-prod-qwen3-32b/benchmark.png
compare:
  description: One entry per level and metric in both runs (before, after, ratio, verdict).
  returned: when baseline_dir is set
  type: list
  elements: dict
compare_table:
  description: The comparison as a Markdown table.
  returned: when baseline_dir is set
  type: str
compare_plot:
  description: Path of the comparison's PNG plot.
  returned: when baseline_dir is set
  type: str
differences:
  description: The workload settings the two runs differ in (their ratios then mix two changes).
  returned: when baseline_dir is set
  type: list
  elements: str
  sample: ["output_len 16 -> 32"]
problems:
  description: Levels missing or with failed requests.
  returned: always
  type: list
  elements: str
"""

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._bench import (
    compare,
    compare_csv,
    compare_markdown,
    level_problems,
    level_row,
    markdown_table,
    plot,
    record_differences,
    to_csv,
)


def read_record(run_dir):
    """The folder's run.json, or None."""
    run_file = os.path.join(run_dir, "run.json")
    if not os.path.isfile(run_file):
        return None
    with open(run_file, encoding="utf-8") as handle:
        return json.load(handle)


def read_run(run_dir, levels, num_prompts):
    """(rows, problems, record) of a run folder. record holds the levels and prompts per level
    (from run.json when not given) and whatever else the folder's run.json says; None when it
    has no run.json to read them from."""
    record = {}
    if not levels or not num_prompts:
        record = read_record(run_dir)
        if record is None:
            return [], ["%s holds no run.json: it is not a folder a benchmark run wrote" % run_dir], None
    record = dict(record, levels=levels or record.get("levels") or [],
                  num_prompts=num_prompts or int(record.get("num_prompts") or 0))
    rows, problems = [], []
    for level in record["levels"]:
        path = os.path.join(run_dir, "level-%s.json" % level["name"])
        if not os.path.isfile(path):
            problems.append("level %s: no result (%s missing): the benchmark did not finish this level" % (level["name"], path))
            continue
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
        rows.append(level_row(level["name"], result))
        problems.extend(level_problems(level["name"], result, record["num_prompts"]))
    return rows, problems, record


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def plot_or_fail(module, runs, path, title):
    try:
        plot(runs, path, title)
    except ImportError as error:
        module.fail_json(msg="The plot needs matplotlib in the control node's Python (%s): %s. Fix: pip install -r "
                             "tools/controller-requirements.txt in the environment that runs ansible-playbook."
                             % (sys.executable, error))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            run_dir=dict(type="path", required=True),
            levels=dict(type="list", elements="dict", default=[]),
            num_prompts=dict(type="int", default=0),
            metadata=dict(type="dict", default={}),
            baseline_dir=dict(type="path", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    run_dir = os.path.abspath(params["run_dir"])
    rows, problems, record = read_run(run_dir, params["levels"], params["num_prompts"])
    if params["metadata"] and record is not None:
        record = dict(params["metadata"], levels=record["levels"], num_prompts=record["num_prompts"])
    name = os.path.basename(run_dir)
    result = dict(changed=False, rows=rows, problems=problems, table=markdown_table(rows),
                  plot=os.path.join(run_dir, "benchmark.png"))
    baseline_rows = []
    if params["baseline_dir"]:
        baseline_dir = os.path.abspath(params["baseline_dir"])
        baseline_rows, baseline_problems, baseline_record = read_run(baseline_dir, [], 0)
        if not baseline_rows:
            problems.extend("baseline: %s" % problem for problem in baseline_problems)
        else:
            # A baseline cut short still compares on the levels it finished.
            for problem in baseline_problems:
                module.warn("baseline: %s" % problem)
        baseline_name = os.path.basename(baseline_dir)
        entries = compare(baseline_rows, rows)
        differences = record_differences(baseline_record, record)
        result.update(compare=entries, compare_table=compare_markdown(entries, baseline_name, name, differences),
                      compare_plot=os.path.join(run_dir, "compare-%s.png" % baseline_name), differences=differences)
    if not module.check_mode and rows:
        if params["metadata"]:
            write(os.path.join(run_dir, "run.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
        write(os.path.join(run_dir, "summary.csv"), to_csv(rows))
        write(os.path.join(run_dir, "summary.md"), result["table"] + "\n")
        plot_or_fail(module, [("", rows)], result["plot"], name)
        result["changed"] = True
        if params["baseline_dir"] and baseline_rows:
            stem = result["compare_plot"][:-len(".png")]
            write(stem + ".md", result["compare_table"] + "\n")
            write(stem + ".csv", compare_csv(result["compare"]))
            plot_or_fail(module, [("before", baseline_rows), ("after", rows)], result["compare_plot"],
                         "%s (before) vs %s (after)" % (baseline_name, name))
    if problems and not params["levels"] and rows:
        # Comparing folders an earlier run wrote: one cut short still compares on what it has.
        for problem in problems:
            module.warn(problem)
        result["problems"] = problems = []
    if problems:
        module.fail_json(msg="the benchmark's results are incomplete: %s" % "; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
