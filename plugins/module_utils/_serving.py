# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run must do to the serve and cluster phases' containers: each spec's label and hash,
which containers must start, restart once or be removed, and why. Pure functions over the
specs (module_utils/_plans.py) and the containers serving_info listed; the serving_containers
action and the filters call them."""

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


def serving_changes(specs, containers, deployment, multi_node, balancer_image=""):
    """This node's part of the serve phase's decision, before the group decision over every node.

    specs: this node's container specs; containers: the deployment's containers serving_info
    listed; deployment: vllm_serve_container_name; multi_node: the plan spans nodes (ranks that
    Docker restarted count as broken). Returns to_start (specs to create, recreate or start),
    restart (name -> why, to restart once), broken (name -> why), why (one line per container
    that must start, for the output) and remove (the deployment's containers no longer wanted:
    fewer instances, or the balancer once there is one instance again).
    """
    to_start = containers_to_start(specs, containers)
    restart = restart_reasons(specs, containers)
    broken = broken_ranks(specs, containers) if multi_node else {}
    reasons = dict(restart, **broken)
    why = [start_reason(spec["name"], reasons) for spec in to_start]
    why += [start_reason(name, broken) for name in broken]
    wanted = [spec["name"] for spec in specs]
    if any(spec.get("role") == "instance" for spec in specs):
        wanted.append(deployment + "-balancer")
    remove = sorted(name for name in by_name(containers) if name not in wanted)
    return dict(to_start=to_start, restart=restart, broken=broken, why=why, remove=remove)
