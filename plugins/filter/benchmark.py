# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the benchmark (playbooks/benchmark.yml): the sweep, the refusals, each level's
argv and progress line. The decisions live in module_utils/_bench.py."""

from __future__ import annotations

import json
import os

from ansible_collections.llmops.inference.plugins.module_utils._bench import (
    bench_argv,
    input_problems,
    length_problems,
    level_line,
    level_row,
    levels,
    run_folder_name,
)


def endpoint_problems(endpoint, head):
    """Why the benchmark cannot measure the endpoint's container (empty: it runs)."""
    if endpoint["state"] == "running":
        return []
    return ["The endpoint's API container %s on %s is %s, so there is nothing to measure. Fix: deploy it first "
            "(ansible-playbook deploy.yml, or --tags serve), then benchmark." % (endpoint["container"], head, endpoint["state"])]


def benchmark_input_problems(settings, cluster_hosts):
    """The refusals of the benchmark's own settings (host-independent), for preflight."""
    return input_problems(settings, list(cluster_hosts), os.path.exists)


def benchmark_levels(settings):
    """The sweep's levels: [{name, max_concurrency, request_rate}]."""
    return levels(settings.get("concurrency") or [], settings.get("request_rates") or [])


def benchmark_argv(level, settings, url, model, dataset_path=""):
    """The argv after `vllm bench serve` for one level; its result goes to /results/level-<name>.json."""
    return bench_argv(level, settings, url, model, "level-%s.json" % level["name"], dataset_path)


def benchmark_level_line(result_text, level, position, total):
    """The progress line of one finished level, from its result JSON's text."""
    return level_line(position, total, level_row(level["name"], json.loads(result_text)))


def benchmark_evidence(result, secret, lines=40):
    """The last lines of a failed level's container output (or the module's error), the key masked."""
    text = result.get("container", {}).get("Output") or result.get("msg") or "no output"
    kept = [line for line in str(text).splitlines() if line.strip() and " torch/_library/triton.py" not in line]
    tail = "\n".join(kept[-int(lines):])
    return tail.replace(secret, "********") if secret else tail


def benchmark_run_folder(timestamp, inventory, endpoint):
    """The run's folder name: 20261201T225230Z-sandbox-tiny-qwen-80e179ff."""
    return run_folder_name(timestamp, inventory, endpoint["model"], endpoint["spec_hash"])


def absolute_path(path):
    """A control-node path made absolute against where ansible-playbook runs."""
    return os.path.abspath(os.path.expanduser(str(path)))


class FilterModule:
    def filters(self):
        return {
            "endpoint_problems": endpoint_problems,
            "benchmark_input_problems": benchmark_input_problems,
            # The lengths asked for against the max_model_len the endpoint reports.
            "benchmark_length_problems": length_problems,
            "benchmark_levels": benchmark_levels,
            "benchmark_argv": benchmark_argv,
            "benchmark_level_line": benchmark_level_line,
            "benchmark_evidence": benchmark_evidence,
            "benchmark_run_folder": benchmark_run_folder,
            "absolute_path": absolute_path,
        }
