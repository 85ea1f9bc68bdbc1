# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the vllm_serve role: the serving plan checked in preflight, and recovery from a
serving container that failed (evidence, repair, rollback)."""

from __future__ import annotations

import hashlib
import json

SPEC_LABEL = "org.llmops.spec"
SPEC_HASH_LABEL = "org.llmops.spec-hash"


def spec_json(spec):
    """The spec as kept in its container's label: JSON with sorted keys."""
    return json.dumps(spec, sort_keys=True)


def spec_hash(spec):
    """SHA-256 of spec_json: the label a rerun compares to decide whether to recreate."""
    return hashlib.sha256(spec_json(spec).encode("utf-8")).hexdigest()


def containers_to_start(specs, containers):
    """The specs whose container must be created, recreated or started: missing, not running,
    or labelled with another spec. A rerun that finds every container running its spec leaves
    them alone without asking docker_container (one round trip less per container).

    containers: the deployment's containers as serving_facts lists them (Names, State, Labels).
    """
    found = {}
    for container in containers or []:
        for name in container.get("Names") or []:
            found[name.lstrip("/")] = container
    wanted = []
    for spec in specs or []:
        container = found.get(spec["name"])
        running = container is not None and container.get("State") == "running"
        if not running or (container.get("Labels") or {}).get(SPEC_HASH_LABEL) != spec_hash(spec):
            wanted.append(spec)
    return wanted


def container_evidence(problem):
    """Lines that show why a watched container failed: its state, then its last log lines."""
    exit_code = "" if problem.get("status") == "running" else ", exit code %s" % problem.get("exit_code")
    lines = [
        "%s: %s%s, %s restart(s), OOM killed: %s%s" % (
            problem["name"], problem.get("status"), exit_code, problem.get("restart_count"),
            "yes" if problem.get("oom_killed") else "no",
            ", error: %s" % problem["error"] if problem.get("error") else ""),
    ]
    tail = problem.get("log_tail") or []
    if tail:
        lines.append("last %d log lines of %s:" % (len(tail), problem["name"]))
        lines.extend("  | " + line for line in tail)
    return lines


def failure_messages(failed_result, secret):
    """The messages of a failed task (each failed loop item, or the task), the secret masked."""
    results = failed_result.get("results") or [failed_result]
    messages = [str(result.get("msg") or "no message") for result in results if result.get("failed")]
    return [message.replace(secret, "********") if secret else message for message in messages]


def stale_containers(results):
    """{name: reason} for waits that found a container in a network namespace gone stale."""
    return {
        result["container_problem"]["name"]: result["container_problem"]["reason"]
        for result in results or []
        if (result.get("container_problem") or {}).get("stale_network")
    }


def previous_specs(containers):
    """The specs kept in the labels of the containers serving_facts listed."""
    specs = []
    for container in containers or []:
        label = (container.get("Labels") or {}).get(SPEC_LABEL)
        if label:
            specs.append(json.loads(label))
    return sorted(specs, key=lambda spec: spec["name"])


def restart_counts(results):
    """{name: RestartCount} from the loop results of the task that started the containers."""
    counts = {}
    for result in results or []:
        container = result.get("container") or {}
        if "RestartCount" in container:
            counts[result["item"]["name"]] = container["RestartCount"]
    return counts


def waited_seconds(results, report_every):
    """Seconds spent in readiness waits run as until loops of report_every-second windows."""
    total = 0.0
    for result in results or []:
        if result.get("time_to_ready") is not None:
            total += (int(result.get("attempts") or 1) - 1) * float(report_every) + float(result["time_to_ready"])
    return round(total, 1)


def serving_plan(accelerators, options, host, nodes, vcpus):
    """The serving plan of the head, decided before anything changes.

    accelerators: the llmops_accelerators fact; options: profile, tensor_parallel_size,
    pipeline_parallel_size, instances (the vllm_serve_* values, 0 = automatic); nodes: how many
    hosts inference_cluster has; vcpus: the head's CPU count. Returns profile,
    tensor_parallel, pipeline_parallel and problems: one message per wrong input, naming the
    host, the variable, the value seen and the fix.
    """
    vendor = accelerators.get("vendor", "cpu")
    count = int(accelerators.get("count", 0))
    instances = int(options["instances"])
    wanted_profile = options["profile"]
    profile = vendor if wanted_profile == "auto" else wanted_profile
    tensor = int(options["tensor_parallel_size"]) or (1 if profile == "cpu" else max(count // max(instances, 1), 1))
    pipeline = int(options["pipeline_parallel_size"]) or (1 if profile == "cpu" or instances > 1 else int(nodes))
    problems = []
    where = "On %s: " % host
    if profile != "cpu" and profile != vendor:
        problems.append(
            where + "vllm_serve_profile=%s but the node has %d %s accelerator(s). Fix: set vllm_serve_profile "
            "to auto or %s." % (wanted_profile, count, vendor, vendor))
    elif profile == "cpu":
        if tensor > 1:
            problems.append(
                where + "vllm_serve_tensor_parallel_size=%d with the cpu profile: vLLM on CPU serves one node with "
                "tensor parallel 1 here. Fix: leave vllm_serve_tensor_parallel_size at 0 (automatic) or 1; use "
                "vllm_serve_instances to use more cores." % tensor)
        if instances > int(vcpus):
            problems.append(
                where + "vllm_serve_instances=%d but the node has %d CPU(s): each instance needs at least one. "
                "Fix: set vllm_serve_instances to at most %d." % (instances, int(vcpus), int(vcpus)))
    elif tensor * instances > count and not int(options["tensor_parallel_size"]):
        problems.append(
            where + "vllm_serve_instances=%d needs at least one %s accelerator each but the node has %d. Fix: set "
            "vllm_serve_instances to at most %d." % (instances, vendor, count, max(count, 1)))
    elif tensor * instances > count:
        problems.append(
            where + "vllm_serve_tensor_parallel_size=%d x vllm_serve_instances=%d needs %d %s accelerator(s) but "
            "the node has %d. Fix: make tensor parallel x instances at most %d (0 = automatic)."
            % (tensor, instances, tensor * instances, vendor, count, count))
    if pipeline > int(nodes):
        problems.append(
            where + "vllm_serve_pipeline_parallel_size=%d but inference_cluster has %d node(s), one pipeline stage "
            "each. Fix: set it to at most %d (0 = automatic)." % (pipeline, int(nodes), int(nodes)))
    elif pipeline > 1:
        problems.append(
            where + "vllm_serve_pipeline_parallel_size resolves to %d (one stage per node), but serving across "
            "nodes needs the cluster phase, which is not built yet. Fix: set vllm_serve_pipeline_parallel_size: 1 "
            "to serve from the head alone." % pipeline)
    return dict(profile=profile, tensor_parallel=tensor, pipeline_parallel=pipeline, problems=problems)


class FilterModule:
    def filters(self):
        return {
            "container_evidence": container_evidence,
            "stale_containers": stale_containers,
            "previous_specs": previous_specs,
            "failure_messages": failure_messages,
            "waited_seconds": waited_seconds,
            "restart_counts": restart_counts,
            "serving_plan": serving_plan,
            "spec_json": spec_json,
            "spec_hash": spec_hash,
            "containers_to_start": containers_to_start,
        }
