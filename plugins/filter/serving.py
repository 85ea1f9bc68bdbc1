# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the vllm_serve role uses to recover from a serving container that failed."""

from __future__ import annotations

import json

SPEC_LABEL = "org.llmops.spec"


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


def stale_containers(results):
    """{name: reason} for waits that found a container in a network namespace gone stale."""
    return {
        result["container_problem"]["name"]: result["container_problem"]["reason"]
        for result in results or []
        if (result.get("container_problem") or {}).get("stale_network")
    }


def previous_specs(containers):
    """The specs kept in the labels of the containers `docker_host_info` listed."""
    specs = []
    for container in containers or []:
        label = (container.get("Labels") or {}).get(SPEC_LABEL)
        if label:
            specs.append(json.loads(label))
    return sorted(specs, key=lambda spec: spec["name"])


def waited_seconds(results, report_every):
    """Seconds spent in readiness waits run as until loops of report_every-second windows."""
    total = 0.0
    for result in results or []:
        if result.get("time_to_ready") is not None:
            total += (int(result.get("attempts") or 1) - 1) * float(report_every) + float(result["time_to_ready"])
    return round(total, 1)


class FilterModule:
    def filters(self):
        return {
            "container_evidence": container_evidence,
            "stale_containers": stale_containers,
            "previous_specs": previous_specs,
            "waited_seconds": waited_seconds,
        }
