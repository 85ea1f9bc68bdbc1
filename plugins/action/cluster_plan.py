# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster plan, decided once on the control node from every node's facts (see
plugins/modules/cluster_plan.py for its documentation)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.llmops.inference.plugins.module_utils._plans import cluster_plan

ARGUMENT_SPEC = dict(
    profile=dict(type="str", required=True),
    tensor_parallel_size=dict(type="int", required=True),
    pipeline_parallel_size=dict(type="int", required=True),
    instances=dict(type="int", required=True),
    nodes=dict(type="int", required=True),
    distributed_backend=dict(type="str", required=True),
    cpu_ray_shim=dict(type="str", default=""),
    image=dict(type="str", default=""),
    images=dict(type="dict", default={}),
    registry_mirror=dict(type="str", default=""),
    derive_image=dict(type="bool", default=True),
    ray_requirement=dict(type="str", default=""),
    erdma_packages=dict(type="list", elements="str", default=[]),
)
OPTIONS = ("profile", "tensor_parallel_size", "pipeline_parallel_size", "instances", "nodes", "distributed_backend",
           "cpu_ray_shim")


def node_accelerators(variables):
    """A node's llmops_accelerators fact, read from ansible_facts (a fact read as a top-level
    variable is deprecated from ansible-core 2.20)."""
    return (variables.get("ansible_facts") or {}).get("llmops_accelerators")


def cluster_nodes(hosts, hostvars):
    """What the plan needs of each node, in rank order: address, vendor, accelerators, CPUs."""
    nodes = []
    for host in hosts:
        variables = hostvars[host]
        accelerators = node_accelerators(variables) or {}
        nodes.append(dict(
            host=host, address=variables.get("llmops_private_address") or "",
            vendor=accelerators.get("vendor", "cpu"), count=int(accelerators.get("count", 0)),
            erdma_nics=int(accelerators.get("erdma_nic_count", 0)),
            vcpus=int(accelerators.get("vcpus", 1))))
    return nodes


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        groups = task_vars["groups"]
        head = list(groups.get("inference_head") or [])
        hosts = head + [host for host in groups.get("inference_cluster") or [] if host not in head]
        hostvars = task_vars["hostvars"]
        reached = set(task_vars.get("ansible_play_hosts_all") or [])
        left_out = [host for host in hosts if host not in reached and node_accelerators(hostvars[host]) is None]
        plan = cluster_plan(
            cluster_nodes(hosts, hostvars), {name: args[name] for name in OPTIONS},
            {"image": args["image"], "images": args["images"], "registry_mirror": args["registry_mirror"],
             "derive": args["derive_image"], "ray_requirement": args["ray_requirement"],
             "erdma_packages": args["erdma_packages"]}, left_out)
        result.update(plan, changed=False)
        if plan["problems"]:
            result.update(failed=True, msg="\n".join(plan["problems"]))
        return result
