#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fabric_check
short_description: Prove the fabric between the nodes with a real all-reduce across the Ray cluster
version_added: 0.1.0
description:
  - Joins the Ray cluster from inside the head's Ray node container (C(docker exec)), places
    one rank on every alive node and runs a real C(torch.distributed) all-reduce across them
    - Gloo on CPU, NCCL on GPUs (one GPU per node) - then times a second one.
  - With NCCL each rank runs with C(NCCL_DEBUG=INFO); the module parses that log and reports
    the transport each rank used to reach each peer (V(NET/IB) or V(NET/Socket)). With
    O(rdma_expected) it fails when NCCL fell back to sockets.
  - Fails when a node is missing, a rank fails, or the sum is wrong, naming rank and address.
  - With NCCL, when fewer GPUs are free in the Ray cluster than nodes (a serving job holds
    them), it does not run and says so in RV(busy).
  - Changes nothing on the nodes.
author:
  - llmops.inference maintainers (@llmops)
options:
  container:
    description: The head's Ray node container.
    type: str
    required: true
  backend:
    description: The collective backend.
    type: str
    choices: [gloo, nccl]
    default: gloo
  expected_nodes:
    description: How many nodes must take part.
    type: int
    required: true
  bytes:
    description: Bytes all-reduced per rank.
    type: int
    default: 16777216
  timeout:
    description: Seconds for the rendezvous and each collective.
    type: int
    default: 300
  rdma_expected:
    description: The nodes have RDMA NICs (the cluster phase sets it where eRDMA NICs exist); NCCL over sockets is a failure.
    type: bool
    default: false
  python:
    description: The interpreter in the container that has Ray and PyTorch.
    type: str
    default: python3
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Prove the fabric before vLLM starts
  llmops.inference.fabric_check:
    container: ray-node
    backend: nccl
    expected_nodes: 2
    rdma_expected: true
  when: inventory_hostname in groups['inference_head']
"""

RETURN = r"""
world_size:
  description: Ranks that took part (one per node).
  returned: when the check ran
  type: int
  sample: 2
ranks:
  description:
    - Per rank, in rank order (the head first) - rank, ip, hostname, backend, seconds of the timed all-reduce,
      bus_gbps, and with NCCL networks (the net plugins it chose), peers (peer rank to transports), gpudirect
      (peer rank reached over RDMA to whether GPUDirect RDMA is used) and warnings.
  returned: when the check ran
  type: list
  elements: dict
busy:
  description: Why the check did not run - the GPUs are held by a job (vLLM serving through Ray holds all of them).
  returned: when the GPUs were busy
  type: str
notices:
  description: What works but not at its best - RDMA peers reached without GPUDirect RDMA.
  returned: when the check ran
  type: list
  elements: str
problems:
  description: What failed; empty when the fabric works.
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._fabric import FABRIC_SCRIPT, parse_report, summarize


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            backend=dict(type="str", choices=["gloo", "nccl"], default="gloo"),
            expected_nodes=dict(type="int", required=True),
            bytes=dict(type="int", default=16777216),
            timeout=dict(type="int", default=300),
            rdma_expected=dict(type="bool", default=False),
            python=dict(type="str", default="python3"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    docker = module.get_bin_path("docker", required=True)
    options = json.dumps({"backend": params["backend"], "bytes": params["bytes"], "timeout": params["timeout"]})
    command = [docker, "exec", params["container"], params["python"], "-c", FABRIC_SCRIPT, options]
    rc, stdout, stderr = module.run_command(command, environ_update={"LC_ALL": "C"})
    try:
        report = parse_report(stdout)
    except ValueError as error:
        module.fail_json(msg="the fabric check did not run in %s (rc=%s): %s %s" % (params["container"], rc, error, stderr[-500:]),
                         problems=[str(error)])
    if report.get("busy"):
        module.exit_json(changed=False, busy=report["busy"], problems=[], world_size=0, ranks=[],
                         msg="not run: %s (a serving job holds them)" % report["busy"])
    result = summarize(report, params["expected_nodes"], params["rdma_expected"], params["bytes"])
    if result["problems"]:
        module.fail_json(msg="the fabric check failed: %s" % "; ".join(result["problems"]), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
