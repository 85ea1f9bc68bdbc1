# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's decisions and reports, as pure functions: the sweep's levels, the argv of
`vllm bench serve` for each, what is wrong with the operator's settings, and the summary,
CSV, Markdown table, comparison and plot built from vLLM's result JSON."""

from __future__ import annotations

import csv
import io
import math
import os
import re

# What the summary keeps of vLLM's result JSON, in the order VastAI's deployment guide lists them:
# (key, label, which way is better: 1 higher, -1 lower, 0 neither).
METRICS = [
    ("max_concurrency", "Maximum concurrency", 0),
    ("request_rate", "Request rate (req/s)", 0),
    ("duration", "Duration (s)", 0),
    ("completed", "Successful requests", 0),
    ("failed", "Failed requests", -1),
    ("total_input_tokens", "Input tokens", 0),
    ("total_output_tokens", "Generated tokens", 0),
    ("request_throughput", "Request throughput (req/s)", 1),
    ("output_throughput", "Output token throughput (tok/s)", 1),
    ("total_token_throughput", "Total token throughput (tok/s)", 1),
    ("mean_ttft_ms", "Mean TTFT (ms)", -1),
    ("median_ttft_ms", "Median TTFT (ms)", -1),
    ("p99_ttft_ms", "P99 TTFT (ms)", -1),
    ("mean_tpot_ms", "Mean TPOT (ms)", -1),
    ("median_tpot_ms", "Median TPOT (ms)", -1),
    ("p99_tpot_ms", "P99 TPOT (ms)", -1),
    ("median_itl_ms", "Median ITL (ms)", -1),
    ("p99_itl_ms", "P99 ITL (ms)", -1),
    ("median_e2el_ms", "Median E2E latency (ms)", -1),
    ("p99_e2el_ms", "P99 E2E latency (ms)", -1),
    # VastAI's guide's "per-req decoding token throughput": one request's tokens per second after
    # its first token, 1000 / mean TPOT.
    ("decode_throughput_per_request", "Per-request decode throughput (tok/s)", 1),
]
# The metrics a comparison lists: the ones that move when a serving option changes.
COMPARED = [metric for metric in METRICS if metric[2] != 0 and metric[0] != "failed"]
DATASETS = ("random", "sharegpt", "custom")


def deployed_endpoint(inspect, url, model, container):
    """What the endpoint's API container runs, from its inspect document (None: it does not
    exist): its state, image, spec hash, the model folder it mounts and the max_model_len it
    was started with."""
    endpoint = {"url": url, "model": model, "container": container, "state": "absent", "image": "", "image_id": "",
                "spec_hash": "", "model_dir": "", "max_model_len": None}
    if not inspect:
        return endpoint
    config = inspect.get("Config") or {}
    labels = config.get("Labels") or {}
    command = config.get("Cmd") or []
    endpoint.update(
        state=(inspect.get("State") or {}).get("Status", "unknown"),
        image=config.get("Image", ""),
        image_id=inspect.get("Image", ""),
        spec_hash=labels.get("org.llmops.spec-hash", ""),
        model_dir=next((mount["Source"] for mount in inspect.get("Mounts") or [] if mount.get("Destination") == "/model"), ""),
    )
    if "--max-model-len" in command[:-1]:
        endpoint["max_model_len"] = int(command[command.index("--max-model-len") + 1])
    return endpoint


def level_name(max_concurrency, request_rate):
    """A level's short, file-safe name: c4, r10, c4-r10; rinf for all at once with no cap
    (a rate of inf is left out beside a cap)."""
    parts = []
    if max_concurrency:
        parts.append("c%d" % int(max_concurrency))
    if str(request_rate) != "inf" or not max_concurrency:
        parts.append("r%s" % rate_value(request_rate))
    return "-".join(parts)


def levels(concurrency, request_rates):
    """Every (concurrency, rate) pair of the sweep, concurrency outer; an empty list of
    either means that dimension is not swept (no cap on concurrency, or all requests at once)."""
    caps = [int(value) for value in concurrency] or [None]
    rates = [rate_value(value) for value in request_rates] or ["inf"]
    return [
        {"name": level_name(cap, rate), "max_concurrency": cap, "request_rate": rate}
        for cap in caps for rate in rates
    ]


def rate_value(value):
    """A request rate as vLLM takes it: 'inf' or a positive number."""
    if str(value).strip().lower() == "inf":
        return "inf"
    return format_number(float(value))


def format_number(value):
    """A number without a trailing .0 (10, 2.5)."""
    return ("%d" % value) if float(value).is_integer() else ("%g" % value)


def input_problems(settings, cluster_hosts, controller_path_exists):
    """One message per bad benchmark setting: the variable, the value seen and the fix.

    settings: the role's variables without their vllm_benchmark_ prefix; cluster_hosts: the
    inventory's inference_cluster; controller_path_exists: a callable telling whether a path
    exists on the control node (the dataset file, the baseline folder).
    """
    problems = []

    def positive_int(value):
        try:
            return int(value) >= 1 and str(value).strip() == str(int(value))
        except (TypeError, ValueError):
            return False

    concurrency = settings.get("concurrency") or []
    rates = settings.get("request_rates") or []
    if not concurrency and not rates:
        problems.append("vllm_benchmark_concurrency and vllm_benchmark_request_rates are both empty: nothing to "
                        "sweep. Fix: list concurrency levels (e.g. [1, 4, 16]) or request rates (e.g. [10, 20]).")
    bad = [value for value in concurrency if not positive_int(value)]
    if bad:
        problems.append("vllm_benchmark_concurrency=%s holds %s: a level is a number of requests in flight, 1 or more. "
                        "Fix: list positive whole numbers, e.g. [1, 4, 16]." % (concurrency, ", ".join(map(str, bad))))
    bad = [value for value in rates if not _rate_ok(value)]
    if bad:
        problems.append("vllm_benchmark_request_rates=%s holds %s: a rate is requests per second above 0, or inf "
                        "(all at once). Fix: e.g. [10, 20, inf]." % (rates, ", ".join(map(str, bad))))
    elif not problems:
        names = [level["name"] for level in levels(concurrency, rates)]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            problems.append("vllm_benchmark_concurrency=%s and vllm_benchmark_request_rates=%s give the level(s) %s twice. "
                            "Fix: list each value once." % (concurrency, rates, ", ".join(twice)))
    for name in ("num_prompts", "output_len") + (("input_len",) if settings.get("dataset") == "random" else ()):
        if not positive_int(settings.get(name)):
            problems.append("vllm_benchmark_%s=%s: it must be a whole number, 1 or more. Fix: e.g. %s."
                            % (name, settings.get(name), {"num_prompts": 200, "output_len": 128, "input_len": 1024}[name]))
    dataset, dataset_file = settings.get("dataset"), settings.get("dataset_file") or ""
    if dataset not in DATASETS:
        problems.append("vllm_benchmark_dataset=%s: it must be one of %s." % (dataset, ", ".join(DATASETS)))
    elif dataset != "random" and not dataset_file:
        problems.append("vllm_benchmark_dataset=%s needs the file: vllm_benchmark_dataset_file is empty. Fix: give the "
                        "path on the control node of a %s." % (dataset, _DATASET_FORMS[dataset]))
    elif dataset == "random" and dataset_file:
        problems.append("vllm_benchmark_dataset_file=%s is set but vllm_benchmark_dataset=random makes its own prompts. "
                        "Fix: set vllm_benchmark_dataset to sharegpt or custom, or empty the file." % dataset_file)
    dataset_file = os.path.expanduser(dataset_file)
    if dataset_file and dataset != "random" and not (dataset_file.startswith("/") and controller_path_exists(dataset_file)):
        problems.append("vllm_benchmark_dataset_file=%s: no such file on the control node (an absolute path is needed). "
                        "Fix: give the absolute path of a %s." % (dataset_file, _DATASET_FORMS.get(dataset, "dataset")))
    node = settings.get("node") or ""
    if node and node not in cluster_hosts:
        problems.append("vllm_benchmark_node=%s is not a host of inference_cluster (%s). Fix: name one of them, or "
                        "leave it empty to run the benchmark on the head." % (node, ", ".join(cluster_hosts)))
    baseline = os.path.expanduser(settings.get("baseline") or "")
    if baseline and not controller_path_exists(os.path.join(os.path.abspath(baseline), "run.json")):
        problems.append("vllm_benchmark_baseline=%s holds no run.json: it is not a folder an earlier benchmark wrote. "
                        "Fix: give one of the folders under vllm_benchmark_results_dir." % baseline)
    return problems


_DATASET_FORMS = {
    "sharegpt": "ShareGPT JSON file (a list of {\"conversations\": [...]})",
    "custom": "JSONL file with one {\"prompt\": \"...\"} per line",
}


def _rate_ok(value):
    if str(value).strip().lower() == "inf":
        return True
    try:
        return float(value) > 0 and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def length_problems(settings, max_model_len, url):
    """The lengths asked for against the max_model_len the endpoint reports (empty: fine)."""
    if not max_model_len:
        return []
    output_len = int(settings["output_len"])
    input_len = int(settings["input_len"]) if settings["dataset"] == "random" else 1
    if input_len + output_len <= int(max_model_len):
        return []
    if settings["dataset"] == "random":
        seen = "vllm_benchmark_input_len=%d + vllm_benchmark_output_len=%d = %d" % (input_len, output_len, input_len + output_len)
    else:
        seen = "vllm_benchmark_output_len=%d" % output_len
    return ["%s tokens, above the max_model_len %d that %s serves: every request would be refused. Fix: lower them "
            "to fit in %d tokens, or serve a longer context (vllm_serve_max_model_len, then --tags serve)."
            % (seen, int(max_model_len), url, int(max_model_len))]


def bench_argv(level, settings, base_url, model, result_filename, dataset_path=""):
    """The argv after `vllm bench serve` for one level; the API key travels in OPENAI_API_KEY."""
    argv = [
        "--backend", "openai", "--base-url", base_url, "--endpoint", "/v1/completions",
        "--model", model, "--tokenizer", "/model",
        "--dataset-name", settings["dataset"],
        "--num-prompts", str(int(settings["num_prompts"])),
        "--output-len", str(int(settings["output_len"])),
        "--request-rate", str(level["request_rate"]),
        "--seed", str(int(settings.get("seed") or 0)),
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
        "--save-result", "--result-dir", "/results", "--result-filename", result_filename,
        "--disable-tqdm",
    ]
    if level.get("max_concurrency"):
        argv += ["--max-concurrency", str(int(level["max_concurrency"]))]
    if settings["dataset"] == "random":
        argv += ["--random-input-len", str(int(settings["input_len"]))]
    else:
        argv += ["--dataset-path", dataset_path]
    if settings.get("ignore_eos", True):
        argv.append("--ignore-eos")
    return argv + [str(arg) for arg in settings.get("extra_args") or []]


def level_row(name, result):
    """The summary of one level from vLLM's result JSON: METRICS keys plus the level's name."""
    row = {"level": name}
    for key, _label, _better in METRICS:
        row[key] = result.get(key)
    if result.get("request_rate") is not None:
        row["request_rate"] = str(result["request_rate"])
    tpot = result.get("mean_tpot_ms")
    row["decode_throughput_per_request"] = 1000.0 / tpot if tpot else None
    return row


def level_problems(name, result, num_prompts):
    """What makes a level's result unusable: requests that failed or never ran."""
    completed, failed = int(result.get("completed") or 0), int(result.get("failed") or 0)
    if failed == 0 and completed == int(num_prompts):
        return []
    return ["level %s: %d of %d request(s) succeeded, %d failed. The endpoint refused or dropped requests under this "
            "load: look at the serving container's log on the head (docker logs) around the benchmark's time."
            % (name, completed, int(num_prompts), failed)]


def level_line(position, total, row):
    """The progress line printed after each level."""
    return ("level %d/%d %s: %s/%s requests ok in %.1f s; %.1f req/s, %.1f output tok/s; TTFT median %.1f ms, p99 %.1f ms; "
            "TPOT median %.1f ms, p99 %.1f ms" % (
                position, total, row["level"], row["completed"], int(row["completed"] or 0) + int(row["failed"] or 0),
                _num(row["duration"]), _num(row["request_throughput"]), _num(row["output_throughput"]),
                _num(row["median_ttft_ms"]), _num(row["p99_ttft_ms"]), _num(row["median_tpot_ms"]), _num(row["p99_tpot_ms"])))


def _num(value):
    return float(value) if value is not None else float("nan")


def to_csv(rows):
    """The summary rows as CSV text, one line per level."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["level"] + [key for key, _label, _better in METRICS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in writer.fieldnames})
    return out.getvalue()


def _cell(value):
    if isinstance(value, float):
        return "%.6g" % value
    return "" if value is None else value


def fmt(value):
    """A table cell: numbers to 3 significant figures past the point, empty as a dash."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) < 1e6:
            return "%d" % value
        return "%.2f" % value
    return str(value)


def markdown_table(rows):
    """The metrics VastAI's guide lists, as a Markdown table: one row per metric, one column per level."""
    lines = ["| Metric | " + " | ".join(row["level"] for row in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for key, label, _better in METRICS:
        if all(row.get(key) in (None, "") for row in rows):
            continue
        lines.append("| %s | %s |" % (label, " | ".join(fmt(row.get(key)) for row in rows)))
    return "\n".join(lines)


def compare(before, after):
    """One entry per (level, compared metric) present in both runs: the two values, the ratio
    after/before, and whether that is better, worse or the same (within 1 %)."""
    before_by_level = {row["level"]: row for row in before}
    entries = []
    for row in after:
        old = before_by_level.get(row["level"])
        if old is None:
            continue
        for key, label, better in COMPARED:
            new_value, old_value = row.get(key), old.get(key)
            if new_value is None or old_value is None:
                continue
            ratio = float(new_value) / float(old_value) if float(old_value) else None
            change = float(new_value) - float(old_value)
            if (ratio is not None and abs(ratio - 1) < 0.01) or change == 0:
                verdict = "same"
            else:
                verdict = "better" if (change > 0) == (better > 0) else "worse"
            entries.append({"level": row["level"], "metric": key, "label": label, "before": float(old_value),
                            "after": float(new_value), "ratio": ratio, "verdict": verdict})
    return entries


# What must match for two runs' ratios to mean something: the workload and the model.
COMPARABLE = ("model", "settings.dataset", "settings.input_len", "settings.output_len", "settings.num_prompts",
              "settings.ignore_eos", "settings.dataset_file")


def record_differences(before, after):
    """The workload settings two run records (run.json) differ in: ["output_len 16 -> 32", ...].
    Compared as text: -e on the command line gives "200" where the inventory gives 200."""
    def pick(record, dotted):
        for part in dotted.split("."):
            record = (record or {}).get(part)
        return record

    return ["%s %s -> %s" % (key.rsplit(".", maxsplit=1)[-1], pick(before, key), pick(after, key))
            for key in COMPARABLE if str(pick(before, key)) != str(pick(after, key))]


def compare_markdown(entries, before_name, after_name, differences=()):
    """The comparison as a Markdown table with the ratio per metric; a note first when the
    runs' workloads differ or they share no level."""
    notes = []
    if differences:
        notes.append("Note: the two runs measured different workloads (%s): their ratios mix the change you made "
                     "with that one." % "; ".join(differences))
    if not entries:
        notes.append("Note: the two runs share no level (compare runs of the same sweep).")
    header = "| Level | Metric | %s (before) | %s (after) | after / before | |" % (before_name, after_name)
    lines = notes + [header, "|---|---|---:|---:|---:|---|"]
    for entry in entries:
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            entry["level"], entry["label"], fmt(entry["before"]), fmt(entry["after"]),
            "-" if entry["ratio"] is None else "%.3f" % entry["ratio"], entry["verdict"]))
    return "\n".join(lines)


def compare_csv(entries):
    """The comparison as CSV text."""
    out = io.StringIO()
    fields = ["level", "metric", "before", "after", "ratio", "verdict"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        writer.writerow({key: _cell(entry[key]) for key in fields})
    return out.getvalue()


def run_folder_name(timestamp, inventory, model, spec_hash):
    """A run's folder: 20261201T225230Z-sandbox-tiny-qwen-80e179ff (sortable, file-safe; the
    serving container's spec hash tells runs of one model under other options apart)."""
    parts = (timestamp, inventory, model, (spec_hash or "")[:8])
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(part)).strip("_") or "none" for part in parts)


def x_axis(rows):
    """What the plot's x axis sweeps: concurrency when it varies (or when no rate does)."""
    caps = {row.get("max_concurrency") for row in rows}
    rates = {row.get("request_rate") for row in rows}
    if len(caps) > 1 or len(rates) <= 1:
        return "max_concurrency", "Concurrency (requests in flight)", "request_rate"
    return "request_rate", "Request rate (req/s)", "max_concurrency"


def plot(runs, path, title):
    """Write the PNG: output and request throughput, TTFT and TPOT (median and p99) against
    the swept dimension; runs is [(label, rows)], one line style per run (two for a comparison)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    every_row = [row for _label, rows in runs for row in rows]
    x_key, x_label, series_key = x_axis(every_row)
    # Evenly spaced levels (1, 4, 16, 64 read like a log axis; inf and "no cap" get a place too).
    ticks = sorted({_sort_value(row.get(x_key)) for row in every_row})
    panels = [
        ("Output token throughput (tok/s)", [("output_throughput", "")]),
        ("Request throughput (req/s)", [("request_throughput", "")]),
        ("TTFT (ms)", [("median_ttft_ms", "median"), ("p99_ttft_ms", "p99")]),
        ("TPOT (ms)", [("median_tpot_ms", "median"), ("p99_tpot_ms", "p99")]),
    ]
    figure, axes = pyplot.subplots(2, 2, figsize=(12, 8))
    for axis, (panel_title, metrics) in zip(axes.flat, panels):
        for run_index, (run_label, rows) in enumerate(runs):
            for series, series_rows in _series(rows, series_key):
                ordered = sorted(series_rows, key=lambda row: _sort_value(row.get(x_key)))
                xs = [ticks.index(_sort_value(row.get(x_key))) for row in ordered]
                for metric_index, (key, metric_label) in enumerate(metrics):
                    name = " ".join(part for part in (run_label, series, metric_label) if part)
                    # A comparison: one colour per run, solid median and dashed p99.
                    style = {"color": "C%d" % run_index} if len(runs) > 1 else {}
                    axis.plot(xs, [_num(row.get(key)) for row in ordered], marker="os^v"[run_index % 4],
                              linestyle=["-", "--"][metric_index % 2], label=name or None, **style)
        axis.set_title(panel_title)
        axis.set_xlabel(x_label)
        axis.set_xticks(range(len(ticks)), [_tick(value, x_key) for value in ticks])
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        if any(line.get_label() and not line.get_label().startswith("_") for line in axis.get_lines()):
            axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _series(rows, series_key):
    """Rows grouped by the dimension that is not on the x axis, labelled when it varies."""
    groups = {}
    for row in rows:
        groups.setdefault(row.get(series_key), []).append(row)
    if len(groups) == 1:
        return [("", rows)]
    prefix = "c" if series_key == "max_concurrency" else "rate "
    return [("%s%s" % (prefix, fmt(key)), members) for key, members in sorted(groups.items(), key=lambda item: _sort_value(item[0]))]


def _tick(value, x_key):
    if x_key == "max_concurrency" and value == 0:
        return "no cap"
    return "inf" if math.isinf(value) else format_number(value)


def _sort_value(value):
    """A level's coordinate: a number, inf for all-at-once, 0 for no concurrency cap."""
    if value in (None, ""):
        return 0.0
    return float("inf") if str(value) == "inf" else float(value)
