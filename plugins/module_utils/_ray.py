# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ray cluster membership: a probe run where Ray runs, and pure functions over its output."""

from __future__ import annotations

import json

PROBE_MARKER = "LLMOPS_RAY_PROBE "

# Runs with Ray's own interpreter (on the host or inside the serving container). It joins the
# cluster as a driver, lists the nodes and, when asked, runs a zero-CPU task pinned to each
# live node to read the Ray and Python versions really installed there.
PROBE_SCRIPT = r'''
import json, logging, sys
options = json.loads(sys.argv[1])
report = {"driver_python": sys.version.split()[0]}
try:
    import ray
except ImportError as error:
    report["error"] = "ray is not importable by %s: %s" % (sys.executable, error)
    print("LLMOPS_RAY_PROBE " + json.dumps(report))
    sys.exit(0)
report["driver_ray"] = ray.__version__
if not options.get("check_versions"):
    # Membership alone: read the GCS's node table directly (0.5 s) instead of joining the
    # cluster as a driver (2-3 s). A private API of Ray: on any error, join as below.
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
        from ray._raylet import GcsClient
        address = canonicalize_bootstrap_address_or_die(None if options["address"] == "auto" else options["address"])
        report["nodes"] = [
            {"NodeID": info.node_id.hex(), "Alive": info.state == 0, "NodeManagerAddress": info.node_manager_address,
             "NodeManagerHostname": info.node_manager_hostname, "Resources": dict(info.resources_total)}
            for info in GcsClient(address=address).get_all_node_info().values()]
        report["versions"] = {}
        report["source"] = "gcs"
        print("LLMOPS_RAY_PROBE " + json.dumps(report, default=str))
        sys.exit(0)
    except Exception as error:
        report["gcs_error"] = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
try:
    ray.init(address=options["address"], logging_level=logging.ERROR, log_to_driver=False,
             include_dashboard=False, configure_logging=False)
except Exception as error:
    report["error"] = "cannot connect to Ray at %s: %s" % (options["address"], error)
    print("LLMOPS_RAY_PROBE " + json.dumps(report))
    sys.exit(0)
report["nodes"] = ray.nodes()
report["versions"] = {}
if options.get("check_versions"):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def versions():
        import platform
        import ray as node_ray
        return {"ray": node_ray.__version__, "python": platform.python_version()}

    pending = {}
    for node in report["nodes"]:
        if node.get("Alive"):
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            pending[node["NodeID"]] = versions.options(scheduling_strategy=strategy).remote()
    for node_id, ref in pending.items():
        try:
            report["versions"][node_id] = ray.get(ref, timeout=options.get("task_timeout", 30))
        except Exception as error:
            report["versions"][node_id] = {"error": str(error).splitlines()[0][:200]}
ray.shutdown()
print("LLMOPS_RAY_PROBE " + json.dumps(report, default=str))
'''


def parse_probe_output(stdout):
    """Find the probe's JSON line among whatever else Ray printed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            return json.loads(line[len(PROBE_MARKER):])
    raise ValueError("the Ray probe printed no report: %s" % stdout[-500:])


def _node_summary(node, versions):
    resources = node.get("Resources") or {}
    summary = {
        "node_id": node.get("NodeID"),
        "ip": node.get("NodeManagerAddress"),
        "hostname": node.get("NodeManagerHostname"),
        "is_head": "node:__internal_head__" in resources,
        # Per-node "node:<ip>" markers are bookkeeping, not capacity.
        "resources": {key: value for key, value in resources.items() if not key.startswith("node:")},
    }
    node_versions = versions.get(node.get("NodeID"), {})
    summary["ray_version"] = node_versions.get("ray")
    summary["python_version"] = node_versions.get("python")
    if node_versions.get("error"):
        summary["version_error"] = node_versions["error"]
    return summary


def summarize_cluster(report):
    """Alive, unresponsive and lost nodes, total resources and version agreement from a probe report.

    Ray's GCS keeps a killed node "Alive" for about 15 s (measured with Ray 2.60.0), while a
    task pinned to it fails at once. So when versions were probed, a node whose pinned task
    failed is reported as unresponsive and not counted as alive.
    """
    versions = report.get("versions") or {}
    alive, unresponsive, dead = [], [], []
    for node in report.get("nodes") or []:
        summary = _node_summary(node, versions)
        if not node.get("Alive"):
            dead.append(summary)
        elif "version_error" in summary:
            unresponsive.append(summary)
        else:
            alive.append(summary)
    # A node that left and rejoined appears again under a new id, its old entries dead.
    # Report an address as lost only when no alive node holds it.
    alive_ips = {node["ip"] for node in alive}
    lost = [node for node in dead + unresponsive if node["ip"] not in alive_ips]
    lost = list({node["ip"]: node for node in lost}.values())
    totals = {}
    for node in alive:
        for key, value in node["resources"].items():
            totals[key] = totals.get(key, 0) + value
    ray_versions = sorted({node["ray_version"] for node in alive if node["ray_version"]})
    python_versions = sorted({node["python_version"] for node in alive if node["python_version"]})
    return {
        "alive_count": len(alive),
        "nodes": sorted(alive, key=lambda node: (not node["is_head"], node["ip"] or "")),
        "unresponsive_nodes": sorted(unresponsive, key=lambda node: node["ip"] or ""),
        "lost_nodes": sorted(lost, key=lambda node: node["ip"] or ""),
        "head_ip": next((node["ip"] for node in alive if node["is_head"]), None),
        "resources_total": totals,
        "ray_versions": ray_versions,
        "python_versions": python_versions,
        "version_mismatch": len(ray_versions) > 1 or len(python_versions) > 1,
        "driver_ray_version": report.get("driver_ray"),
        "driver_python_version": report.get("driver_python"),
        "read_from": report.get("source", "driver"),
    }
