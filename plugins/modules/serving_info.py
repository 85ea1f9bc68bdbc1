#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_info
short_description: Read in one pass what the serve phase needs to know about a node
version_added: 0.1.0
description:
  - Reports whether the model folder holds a C(config.json) and which folder to mount (the
    verified copy the weights phase's symlink points to), the network interface of the route
    to a peer node (for NCCL and Gloo), the local id of the serving image, and every container
    of the deployment with its labels (they hold each container's spec, for a rollback).
  - One module run instead of a task each; it changes nothing. The image and the containers
    come from the node's Docker Engine API, through its unix socket.
author:
  - llmops.inference maintainers (@llmops)
options:
  model_dir:
    description: The serving path of the model on this node; empty skips it.
    type: path
    default: ""
  peer:
    description: An address of another node; empty skips the route lookup.
    type: str
    default: ""
  image:
    description: The serving image, by name.
    type: str
    required: true
  deployment:
    description: Value of the C(org.llmops.deployment) label of the deployment's containers.
    type: str
    required: true
  watch:
    description: Names of other containers whose state to report in RV(watched) (e.g. the Ray node a serving container joins).
    type: list
    elements: str
    default: []
  secret_files:
    description:
      - Secret files (a token, a key) to report by digest in RV(secret_digests), so a rerun can
        tell that every node already holds the same secret without reading it. Their content
        never leaves the node.
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - llmops.inference.docker_socket
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Read the model folder, route, image and containers
  llmops.inference.serving_info:
    model_dir: /data/llmops/models/Qwen3-32B
    peer: 10.0.0.12
    image: vllm/vllm-openai:v0.32.0
    deployment: vllm-serve
  register: serving
"""

RETURN = r"""
model_config_exists:
  description: Whether O(model_dir) holds a C(config.json).
  returned: always
  type: bool
model_source:
  description: The folder to mount (the symlink's target when O(model_dir) is one).
  returned: always
  type: str
route_interface:
  description: Interface of the route to O(peer); empty without a peer or a route.
  returned: always
  type: str
image_id:
  description: The local id of O(image); empty when the node does not have it.
  returned: always
  type: str
containers:
  description:
    - The deployment's containers as the Engine API lists them (C(Names), C(Labels), C(State), ...).
    - Added for a running container - C(RestartCount) (restarts by the restart policy since it was created),
      C(StartedAt), and C(StaleNetwork), non-empty when it shares the network of a container that restarted after it
      started (a restart joins the new namespace).
  returned: always
  type: list
  elements: dict
watched:
  description: State (running, exited, ..., missing) of each container named in O(watch).
  returned: always
  type: dict
  sample: {ray-node: running}
secret_digests:
  description:
    - Per path in O(secret_files) - C(sha256) of its stripped content (empty when the file is
      missing or empty), its C(mode) and C(owner) (uid:gid), and its folder's C(folder_mode)
      and C(folder_owner) (empty when missing).
  returned: always
  type: dict
  sample: {/etc/llmops/ray/token: {sha256: 9f86d0..., mode: "0600", owner: "0:0", folder_mode: "0700", folder_owner: "0:0"}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._containers import DockerSocket, network_peer, stale_network
from ansible_collections.llmops.inference.plugins.module_utils._serving_info import (
    model_folder,
    route_interface,
    secret_digest,
)


def add_state(docker, container):
    """RestartCount, StartedAt and StaleNetwork (why a running container that shares another's
    network must restart once, or '') of a listed container, from its inspect document."""
    container.update(RestartCount=0, StartedAt="", StaleNetwork="")
    if container.get("State") != "running":
        return
    inspect = docker.inspect(container["Id"])
    if inspect is None:
        return
    container["RestartCount"] = inspect.get("RestartCount", 0)
    container["StartedAt"] = (inspect.get("State") or {}).get("StartedAt", "")
    peer = network_peer(inspect)
    if peer:
        container["StaleNetwork"] = stale_network(inspect, docker.inspect(peer)) or ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model_dir=dict(type="path", default=""),
            peer=dict(type="str", default=""),
            image=dict(type="str", required=True),
            deployment=dict(type="str", required=True),
            watch=dict(type="list", elements="str", default=[]),
            # Paths, not secrets: only their digests and modes are returned.
            secret_files=dict(type="list", elements="path", default=[], no_log=False),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    config_exists, source = model_folder(params["model_dir"]) if params["model_dir"] else (False, "")
    result = dict(changed=False, model_config_exists=config_exists, model_source=source, route_interface="",
                  secret_digests={path: secret_digest(path) for path in params["secret_files"]})
    if params["peer"]:
        ip = module.get_bin_path("ip", required=True)
        rc, out, err = module.run_command([ip, "-o", "route", "get", params["peer"]], environ_update={"LC_ALL": "C"})
        if rc != 0:
            module.fail_json(msg="no route to the peer node %s: %s" % (params["peer"], err.strip()), rc=rc, **result)
        result["route_interface"] = route_interface(out)
    try:
        docker = DockerSocket(params["docker_host"])
        result["image_id"] = docker.image_id(params["image"])
        result["containers"] = docker.containers_labelled("org.llmops.deployment=" + params["deployment"])
        for container in result["containers"]:
            add_state(docker, container)
        result["watched"] = {}
        for name in params["watch"]:
            inspect = docker.inspect(name)
            result["watched"][name] = ((inspect or {}).get("State") or {}).get("Status", "missing") if inspect else "missing"
    except (OSError, RuntimeError, ValueError) as error:
        module.fail_json(msg="cannot ask the Docker engine at %s: %s" % (params["docker_host"], error), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
