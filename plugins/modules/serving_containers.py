#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_containers
short_description: Decide a node's vLLM containers and what the run must do to them
version_added: 0.3.0
description:
  - Runs on the control node (an action plugin), in the serve phase, once per node. From this
    node's part of the cluster plan and the serving settings, builds the spec of every vLLM
    container the node runs (the API server, the instances behind the balancer, or a headless
    rank), and, against the containers M(llmops.inference.serving_info) listed, decides which
    must be created, recreated or started, which restart once (their network went away),
    which ranks Docker restarted on their own, and which containers are no longer wanted.
  - The serve phase then decides across nodes whether the ranks of a multi-node plan restart
    together (the C(group_restart) filter over every node's result).
  - Never changes anything.
author:
  - llmops.inference maintainers (@llmops)
options:
  plan:
    description: This node's part of the cluster plan - C(llmops_plan) combined with C(llmops_plan.nodes[<host>]) (role, node_rank).
    type: dict
    required: true
  containers:
    description: The deployment's containers as M(llmops.inference.serving_info) listed them (C(Names), C(State), C(Labels), C(RestartCount), C(StaleNetwork)).
    type: list
    elements: dict
    default: []
  name:
    description: 'C(vllm_serve_container_name): the container, or the prefix of the instances and the balancer.'
    type: str
    required: true
  image:
    description: The serving image of the plan, by name.
    type: str
    required: true
  image_id:
    description: Its local id (the spec carries it, so a new image behind the same tag recreates).
    type: str
    required: true
  model_source:
    description: The verified model folder to mount (M(llmops.inference.serving_info)'s C(model_source)).
    type: str
    required: true
  listen:
    description: The address the API server binds.
    type: str
    required: true
  probe_address:
    description: The address this node probes its own endpoint on.
    type: str
    required: true
  port:
    description: C(vllm_serve_port).
    type: int
    required: true
  instance_base_port:
    description: 'C(vllm_serve_instance_base_port): the first instance''s port behind the balancer.'
    type: int
    required: true
  instances:
    description: C(vllm_serve_instances).
    type: int
    required: true
  vcpus:
    description: The node's logical CPUs (the CPU profile shares them between instances).
    type: int
    required: true
  served_model_name:
    description: C(vllm_serve_served_model_name).
    type: str
    required: true
  max_model_len:
    description: C(vllm_serve_max_model_len).
    type: int
    required: true
  max_num_seqs:
    description:
      - C(vllm_serve_max_num_seqs); V(0) for the profile's default (VastAI 4, as its vendor runs
        it; NVIDIA vLLM's own, no flag; CPU 256).
    type: int
    required: true
  accelerator_memory_mib:
    description:
      - The node's smallest accelerator memory in MiB (from C(llmops_accelerators)); it decides
        vLLM's own C(--max-num-seqs) default on NVIDIA, and so the balancer's C(maxconn).
    type: int
    default: 0
  trust_remote_code:
    description: C(vllm_serve_trust_remote_code) (always on with the VastAI profile, as its vendor runs it).
    type: bool
    default: false
  dtype:
    description: C(vllm_serve_dtype).
    type: str
    required: true
  gpu_memory_utilization:
    description: C(vllm_serve_gpu_memory_utilization) (accelerator profiles).
    type: float
    required: true
  cpu_kv_cache_bytes:
    description: C(vllm_serve_cpu_kv_cache_bytes) (the CPU profile).
    type: int
    required: true
  enable_chunked_prefill:
    description: C(vllm_serve_enable_chunked_prefill).
    type: bool
    required: true
  enforce_eager:
    description: C(vllm_serve_enforce_eager).
    type: bool
    required: true
  reasoning_parser:
    description: C(vllm_serve_reasoning_parser).
    type: str
    default: ""
  tool_call_parser:
    description: C(vllm_serve_tool_call_parser).
    type: str
    default: ""
  extra_args:
    description: C(vllm_serve_extra_args).
    type: list
    elements: str
    default: []
  extra_env:
    description: C(vllm_serve_extra_env).
    type: dict
    default: {}
  env_file:
    description: The 0600 file that gives the API server its key (never in the spec itself).
    type: str
    required: true
  api_key_sha256:
    description: 'The key''s digest: a new key recreates the API server.'
    type: str
    required: true
  network_mode:
    description: C(vllm_serve_network_mode).
    type: str
    required: true
  restart_policy:
    description: C(vllm_serve_restart_policy).
    type: str
    required: true
  shm_size:
    description: C(vllm_serve_shm_size).
    type: str
    required: true
  host_ip:
    description: This node's private address (C(VLLM_HOST_IP)).
    type: str
    required: true
  ifname:
    description: The interface of the route to the peers (NCCL and Gloo).
    type: str
    required: true
  erdma_nics:
    description: The node's eRDMA NICs (their devices and NCCL's eRDMA settings follow).
    type: int
    default: 0
  master_addr:
    description: The head's private address (the mp backend's rendezvous).
    type: str
    required: true
  master_port:
    description: C(vllm_serve_master_port).
    type: int
    required: true
  ray:
    description: Where the API server of a Ray-backend plan joins the head's Ray node.
    type: dict
    required: true
    suboptions:
      container:
        description: The Ray node container (C(llmops_ray_container_name)).
        type: str
        required: true
      temp_dir:
        description: Ray's session folder on the node (C(llmops_ray_temp_dir)).
        type: str
        required: true
      token_file:
        description: The Ray token file on the node (C(llmops_ray_token_file)).
        type: str
        required: true
notes:
  - The specs are the containers' whole shape; each container carries its spec and the spec's
    digest as labels, so a rerun compares labels, and a failed start rolls back to the spec kept
    on the container before.
"""

EXAMPLES = r"""
- name: Decide this node's serving containers
  llmops.inference.serving_containers:
    plan: "{{ llmops_plan | combine(llmops_plan.nodes[inventory_hostname]) }}"
    containers: "{{ serving.containers }}"
    name: vllm-serve
    image: vllm/vllm-openai:v0.32.0
    image_id: "{{ serving.image_id }}"
    # ... every other option above, from the vllm_serve role's settings
  register: decided
"""

RETURN = r"""
specs:
  description: The spec of every vLLM container this node runs (none on an idle node or a Ray worker).
  returned: always
  type: list
  elements: dict
to_start:
  description: The specs whose container is missing, stopped, of another spec, or in a network that went away.
  returned: always
  type: list
  elements: dict
restart:
  description: Name -> why, for the containers that run their spec but must restart once (their network went away).
  returned: always
  type: dict
broken:
  description: Name -> why, for the ranks of a multi-node plan that Docker restarted on their own (they cannot rejoin).
  returned: always
  type: dict
why:
  description: One line per container that must start, with its reason, for the output.
  returned: always
  type: list
  elements: str
remove:
  description: The deployment's containers no longer wanted (fewer instances; the balancer once one instance is left).
  returned: always
  type: list
  elements: str
per_instance_sequences:
  description: The sequences one instance serves at once (its C(--max-num-seqs), or vLLM's own default); the balancer's C(maxconn) per instance.
  returned: always
  type: int
  sample: 1024
"""
