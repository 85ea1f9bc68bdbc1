#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ray_cluster_info
short_description: Report a live Ray cluster's nodes, resources and versions, and wait for its size
version_added: 0.1.0
description:
  - Joins the Ray cluster as a short-lived driver, where Ray runs - on the node itself or
    inside a named container (C(docker exec)) - and reports the alive nodes with their IP
    addresses and resources (CPU, GPU and custom accelerator resources), the nodes that were
    lost, and the Ray and Python versions really installed on each alive node.
  - Ray keeps a killed node marked alive for about 15 seconds. With O(check_versions) (the
    default) a task pinned to each node proves it still works; a node whose task fails is
    reported in RV(unresponsive_nodes) and RV(lost_nodes), not counted as alive.
  - With O(expected_nodes) it waits up to O(timeout) seconds for that many alive nodes and
    fails naming the alive and lost addresses. With O(fail_on_version_mismatch) it fails when
    the nodes run different Ray or Python versions.
  - Never changes the cluster.
author:
  - llmops.inference maintainers (@llmops)
options:
  address:
    description: Ray address to join; V(auto) finds the cluster this node belongs to.
    type: str
    default: auto
  container:
    description: Run the probe inside this container (C(docker exec)) instead of on the node.
    type: str
  python:
    description: The Python interpreter that has Ray installed.
    type: str
    default: python3
  expected_nodes:
    description: Wait until at least this many nodes are alive; V(0) only reports.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for O(expected_nodes).
    type: int
    default: 120
  poll_interval:
    description: Seconds between probes while waiting.
    type: float
    default: 3
  check_versions:
    description:
      - Run a zero-CPU task on each alive node to read its Ray and Python versions (the probe
        joins the cluster as a driver, 2-3 s).
      - When false, membership alone is read from the GCS's node table (about 0.5 s), through
        a private API of Ray; on any error there the probe joins as a driver instead.
    type: bool
    default: true
  fail_on_version_mismatch:
    description: Fail when alive nodes report different Ray or Python versions.
    type: bool
    default: true
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Wait for the head and both workers
  llmops.inference.ray_cluster_info:
    container: vllm-serve
    expected_nodes: 3
    timeout: 300
  when: inventory_hostname in groups['inference_head']

- name: Report the cluster as it is
  llmops.inference.ray_cluster_info:
    python: /opt/ray/bin/python
  register: ray_cluster
"""

RETURN = r"""
alive_count:
  description: Alive nodes.
  returned: when the probe reached the cluster
  type: int
  sample: 2
nodes:
  description: Alive nodes, head first - node_id, ip, hostname, is_head, resources, ray_version, python_version.
  returned: when the probe reached the cluster
  type: list
  elements: dict
unresponsive_nodes:
  description: Nodes Ray still marks alive whose pinned version task failed (killed moments ago).
  returned: when the probe reached the cluster
  type: list
  elements: dict
lost_nodes:
  description: Dead or unresponsive nodes whose address no alive node holds, one per address.
  returned: when the probe reached the cluster
  type: list
  elements: dict
head_ip:
  description: Address of the head node.
  returned: when the probe reached the cluster
  type: str
  sample: 10.0.0.11
resources_total:
  description: Sum of the alive nodes' resources (CPU, GPU, memory, custom accelerator resources).
  returned: when the probe reached the cluster
  type: dict
  sample: {CPU: 64.0, GPU: 16.0}
ray_versions:
  description: Distinct Ray versions found on alive nodes.
  returned: when the probe reached the cluster
  type: list
  elements: str
  sample: ["2.60.0"]
python_versions:
  description: Distinct Python versions found on alive nodes.
  returned: when the probe reached the cluster
  type: list
  elements: str
  sample: ["3.11.2"]
version_mismatch:
  description: True when alive nodes disagree on the Ray or Python version.
  returned: when the probe reached the cluster
  type: bool
  sample: false
read_from:
  description: Where the last probe read the nodes - V(gcs) (the node table) or V(driver) (ray.init).
  returned: when the probe reached the cluster
  type: str
  sample: gcs
probes:
  description: Number of probes made.
  returned: always
  type: int
  sample: 1
cmd:
  description: The probe's command line, without the script.
  returned: always
  type: list
  elements: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._ray import (
    PROBE_SCRIPT,
    parse_probe_output,
    summarize_cluster,
)


def probe_command(module):
    params = module.params
    options = json.dumps({"address": params["address"], "check_versions": params["check_versions"]})
    command = [params["python"], "-c", PROBE_SCRIPT, options]
    if params["container"]:
        docker = module.get_bin_path("docker")
        if not docker:
            module.fail_json(msg="container=%s was given but the docker CLI is not on this node's PATH" % params["container"])
        command = [docker, "exec", params["container"]] + command
    return command


def run_probe(module, command):
    """One probe: (summary, None) or (None, error text)."""
    rc, stdout, stderr = module.run_command(command, environ_update={"LC_ALL": "C", "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        report = parse_probe_output(stdout)
    except ValueError as error:
        return None, "probe rc=%s: %s %s" % (rc, error, stderr[-500:])
    if report.get("error"):
        return None, report["error"]
    return summarize_cluster(report), None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", default="auto"),
            container=dict(type="str"),
            python=dict(type="str", default="python3"),
            expected_nodes=dict(type="int", default=0),
            timeout=dict(type="int", default=120),
            poll_interval=dict(type="float", default=3),
            check_versions=dict(type="bool", default=True),
            fail_on_version_mismatch=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    command = probe_command(module)
    shown_command = [part if part != PROBE_SCRIPT else "<probe script>" for part in command]
    deadline = time.time() + params["timeout"]
    probes = 0
    while True:
        probes += 1
        summary, error = run_probe(module, command)
        enough = summary is not None and summary["alive_count"] >= params["expected_nodes"]
        if enough or time.time() + params["poll_interval"] > deadline:
            break
        time.sleep(params["poll_interval"])

    result = dict(changed=False, probes=probes, cmd=shown_command)
    if summary is None:
        module.fail_json(msg="cannot read the Ray cluster: %s" % error, **result)
    result.update(summary)
    if not enough:
        module.fail_json(
            msg="Ray cluster has %d alive node(s) %s, expected %d after %ss; lost: %s"
            % (
                summary["alive_count"],
                [node["ip"] for node in summary["nodes"]],
                params["expected_nodes"],
                params["timeout"],
                [node["ip"] for node in summary["lost_nodes"]] or "none",
            ),
            **result
        )
    if params["fail_on_version_mismatch"] and summary["version_mismatch"]:
        module.fail_json(
            msg="Ray nodes disagree on versions: ray %s, python %s; every node must run the same image"
            % (summary["ray_versions"], summary["python_versions"]),
            **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
