# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the serve and cluster phases: each
container's spec (built in module_utils/_plans.py), which containers a run must start, and
recovery from a serving container that failed (evidence, repair, rollback)."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.llmops.inference.plugins.module_utils._plans import (
    ray_node_spec,
    ray_port_clashes,
    ray_ports_problem,
    vllm_specs,
)

SPEC_LABEL = "org.llmops.spec"
SPEC_HASH_LABEL = "org.llmops.spec-hash"


def spec_json(spec):
    """The spec as kept in its container's label: JSON with sorted keys."""
    return json.dumps(spec, sort_keys=True)


def spec_hash(spec):
    """SHA-256 of spec_json: the label a rerun compares to decide whether to recreate."""
    return hashlib.sha256(spec_json(spec).encode("utf-8")).hexdigest()


def by_name(containers):
    """{name: container} of the containers serving_info listed (Docker lists names with a '/')."""
    return {name.lstrip("/"): container for container in containers or [] for name in container.get("Names") or []}


def containers_to_start(specs, containers):
    """The specs whose container must be created, recreated or started: missing, not running,
    or labelled with another spec. A rerun that finds every container running its spec leaves
    them alone without asking docker_container (one round trip less per container).

    containers: the deployment's containers as serving_info lists them (Names, State, Labels).
    """
    found = by_name(containers)
    wanted = []
    for spec in specs or []:
        container = found.get(spec["name"])
        running = container is not None and container.get("State") == "running"
        stale = running and container.get("StaleNetwork")
        if not running or stale or (container.get("Labels") or {}).get(SPEC_HASH_LABEL) != spec_hash(spec):
            wanted.append(spec)
    return wanted


def restart_reasons(specs, containers):
    """{name: why} for the containers among specs that run their spec but must restart once:
    their network namespace went away with the container they share it with."""
    found = by_name(containers)
    return {
        spec["name"]: found[spec["name"]]["StaleNetwork"]
        for spec in specs or []
        if (found.get(spec["name"]) or {}).get("StaleNetwork")
    }


def broken_ranks(specs, containers):
    """{name: why} for the ranks of a multi-node plan that Docker restarted since this role
    created them. A rank that restarted alone cannot rejoin its group (measured: the head's
    vLLM restarted by its restart policy waits for a worker still bound to the old group, and
    never serves), so the role recreates every rank together and counts restarts from 0."""
    found = by_name(containers)
    broken = {}
    for spec in specs or []:
        restarts = int((found.get(spec["name"]) or {}).get("RestartCount") or 0)
        if restarts:
            broken[spec["name"]] = "restarted %d time(s) on its own since the ranks started together" % restarts
    return broken


def start_reason(name, reasons):
    """'<name>: <why>' for the output: the known reason, or what containers_to_start found."""
    return "%s: %s" % (name, reasons.get(name) or "missing, stopped or of another spec")


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
    cluster plan (llmops_plan); hostvars: each serving node's __vllm_serve_to_start,
    __vllm_serve_broken and __vllm_serve_why_here (a node that failed earlier has none of them
    and counts as nothing to start). Returns restart (bool) and why (every node's reasons).
    """
    if int(plan["nnodes"]) <= 1:
        return dict(restart=False, why=[])
    pending, why = 0, []
    for host, part in plan["nodes"].items():
        if part["role"] == "idle":
            continue
        variables = hostvars[host]
        pending += len(variables.get("__vllm_serve_to_start") or []) + len(variables.get("__vllm_serve_broken") or {})
        why.extend(variables.get("__vllm_serve_why_here") or [])
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
            "start_reason": start_reason,
            "broken_ranks": broken_ranks,
            "vllm_specs": vllm_specs,
            "ray_node_spec": ray_node_spec,
            "ray_ports_problem": ray_ports_problem,
            "ray_port_clashes": ray_port_clashes,
        }
