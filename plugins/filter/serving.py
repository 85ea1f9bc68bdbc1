# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the serve and cluster phases: each
container's spec (built in module_utils/_plans.py), which containers a run must start, and
recovery from a serving container that failed (evidence, repair, rollback)."""

from __future__ import annotations

import json

from ansible_collections.llmops.inference.plugins.module_utils._plans import (
    ray_node_spec,
    ray_port_clashes,
    ray_ports_problem,
)
from ansible_collections.llmops.inference.plugins.module_utils._serving import (
    SPEC_LABEL,
    containers_to_start,
    restart_reasons,
    spec_hash,
    spec_json,
)


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
    """The specs kept in the labels of the containers serving_info listed."""
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


def group_restart(plan, hostvars):
    """Whether every rank of a multi-node plan must start again together, and why.

    The ranks of one model across nodes form one group: when one of them must start, or
    Docker restarted one on its own (it cannot rejoin), every rank is recreated. plan: the
    cluster plan (llmops_plan); hostvars: each serving node's __vllm_serve_containers (what the
    serving_containers action decided there: to_start, broken, why; a node that failed earlier
    has none and counts as nothing to start). Returns restart (bool) and why (every node's reasons).
    """
    if int(plan["nnodes"]) <= 1:
        return dict(restart=False, why=[])
    pending, why = 0, []
    for host, part in plan["nodes"].items():
        if part["role"] == "idle":
            continue
        decided = hostvars[host].get("__vllm_serve_containers") or {}
        pending += len(decided.get("to_start") or []) + len(decided.get("broken") or {})
        why.extend(decided.get("why") or [])
    return dict(restart=pending > 0, why=why)


class FilterModule:
    def filters(self):
        return {
            "container_evidence": container_evidence,
            "stale_containers": stale_containers,
            "previous_specs": previous_specs,
            "failure_messages": failure_messages,
            "waited_seconds": waited_seconds,
            "restart_counts": restart_counts,
            "group_restart": group_restart,
            "spec_json": spec_json,
            "spec_hash": spec_hash,
            "containers_to_start": containers_to_start,
            "restart_reasons": restart_reasons,
            "ray_node_spec": ray_node_spec,
            "ray_ports_problem": ray_ports_problem,
            "ray_port_clashes": ray_port_clashes,
        }
