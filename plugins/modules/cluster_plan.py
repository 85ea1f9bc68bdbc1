#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_plan
short_description: Decide the cluster plan once, from every node's facts
version_added: 0.1.0
description:
  - Runs on the control node (an action plugin). Reads the nodes of C(inference_cluster), the
    head first, with what the preflight phase gathered on each (C(llmops_accelerators),
    C(llmops_private_address), the CPU count C(llmops_accelerators.vcpus)), and decides the serving plan of the whole
    cluster, the same for every node, that is the profile, the distributed backend, tensor and
    pipeline parallelism, which node is the head, a worker or idle, every node's address,
    and the image every serving and Ray container runs.
  - The preflight phase runs it once and registers its result as C(llmops_plan); every later
    phase only reads it.
  - Fails, naming the host, the variable, the value seen and the fix, when the plan cannot
    work on these nodes, or when the run leaves out (C(--limit)) a node the plan needs.
author:
  - llmops.inference maintainers (@llmops)
options:
  profile:
    description: C(vllm_serve_profile); auto takes the head's accelerator vendor.
    type: str
    required: true
  tensor_parallel_size:
    description: C(vllm_serve_tensor_parallel_size); 0 is automatic (accelerators per node, or nodes on CPU).
    type: int
    required: true
  pipeline_parallel_size:
    description: C(vllm_serve_pipeline_parallel_size); 0 is automatic (nodes, or 1 on CPU).
    type: int
    required: true
  instances:
    description: C(vllm_serve_instances), API servers on the head behind a balancer.
    type: int
    required: true
  nodes:
    description: C(vllm_serve_nodes), how many nodes serve; 0 is every node of C(inference_cluster).
    type: int
    required: true
  distributed_backend:
    description: C(vllm_serve_distributed_backend); auto is ray on accelerators and mp on CPU.
    type: str
    required: true
  cpu_ray_shim:
    description:
      - C(vllm_serve_cpu_ray_shim). SANDBOX ONLY - the folder of the shim that lets vLLM's Ray
        executor run on CPU; when set, the cpu profile may use the ray backend.
    type: str
    default: ""
  image:
    description: C(vllm_serve_image); empty takes O(images) of the profile.
    type: str
    default: ""
  images:
    description: C(vllm_serve_images), the image per profile.
    type: dict
    default: {}
  registry_mirror:
    description: C(vllm_serve_registry_mirror); replaces the image's registry host.
    type: str
    default: ""
  derive_image:
    description:
      - C(serving_image_derive). Every node runs an image derived from the engine image with Ray
        at O(ray_requirement) (the serving_image role builds it once and places it on every node);
        false runs the engine image as it is.
    type: bool
    default: true
  ray_requirement:
    description: C(serving_image_ray_requirement), the pinned Ray a derived image holds.
    type: str
    default: ""
  erdma_packages:
    description:
      - C(serving_image_erdma_packages), eRDMA user-space packages on the control node. A
        derived image gets them where a node has eRDMA NICs on the nvidia profile; their file
        names are part of its name.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Decide the cluster plan once, from every node's facts
  llmops.inference.cluster_plan:
    profile: "{{ vllm_serve_profile }}"
    tensor_parallel_size: "{{ vllm_serve_tensor_parallel_size }}"
    pipeline_parallel_size: "{{ vllm_serve_pipeline_parallel_size }}"
    instances: "{{ vllm_serve_instances }}"
    nodes: "{{ vllm_serve_nodes }}"
    distributed_backend: "{{ vllm_serve_distributed_backend }}"
    images: "{{ vllm_serve_images }}"
  run_once: true
  register: llmops_plan
"""

RETURN = r"""
profile:
  description: The profile every container runs (nvidia, vastai or cpu).
  returned: success
  type: str
backend:
  description: How the serving nodes work together; none (one node), mp (vLLM's own) or ray.
  returned: success
  type: str
tensor_parallel:
  description: The tensor parallel size vLLM is started with.
  returned: success
  type: int
pipeline_parallel:
  description: The pipeline parallel size vLLM is started with.
  returned: success
  type: int
nnodes:
  description: How many nodes serve the model.
  returned: success
  type: int
cpu_ray_shim:
  description: SANDBOX ONLY - the shim folder the Ray and API containers mount (a cpu plan on the ray backend), else empty.
  returned: success
  type: str
needs_ray:
  description: Whether vLLM serves through the Ray cluster (the ray backend).
  returned: success
  type: bool
engine_image:
  description: The vLLM image named (vllm_serve_image or vllm_serve_images), the registry mirror applied.
  returned: success
  type: str
image:
  description:
    - The image every serving and Ray container runs - the derived image (named by its content,
      e.g. C(llmops/vllm-openai:v0.32.0-ray2.60.0-bb54324caf)), or RV(engine_image) when not derived.
  returned: success
  type: str
image_derived:
  description: Whether RV(image) is derived from RV(engine_image) (serving_image_derive).
  returned: success
  type: bool
ray_requirement:
  description: The Ray the derived image holds (empty when not derived).
  returned: success
  type: str
erdma_packages:
  description: The eRDMA user-space packages the derived image gets (empty when none is needed).
  returned: success
  type: list
  elements: str
head:
  description: The head node (Ray head, API server, vLLM's master).
  returned: success
  type: str
master_host:
  description: The node of rank 0 (the head).
  returned: success
  type: str
head_address:
  description: The head's private address.
  returned: success
  type: str
addresses:
  description: Every node's private address, by host.
  returned: success
  type: dict
nodes:
  description:
    - Every node of C(inference_cluster) with its part, C(role) (head, worker or idle), C(node_rank)
      (null on an idle node), C(address), C(vendor), C(count) (accelerators) and C(erdma_nics).
  returned: success
  type: dict
problems:
  description: One message per reason the plan cannot work (the task fails when there is any).
  returned: always
  type: list
  elements: str
"""
