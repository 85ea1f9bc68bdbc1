"""SANDBOX ONLY - never in an image, never on a production node. Lets vLLM's Ray executor run
on the CPU platform, which vLLM refuses ("current platform cpu does not support ray"), so the
sandbox can serve through the Ray backend as GPU clusters do.

The serve and cluster phases mount this folder into the Ray node and API server containers
and put it on PYTHONPATH (Python imports sitecustomize at start) only when the inventory
sets vllm_serve_cpu_ray_shim (the sandbox's does). Three patches, each applied when vLLM
imports the module it patches:
- the CPU platform gets a Ray device key: a custom Ray resource every Ray node then offers
  once (--resources={"llmops_cpu_rank": 1}), so each node holds one rank;
- a Ray worker's "device ids" for that key are [0] (Ray lists ids for accelerators only);
- vLLM names the CPU shared-memory group by the rendezvous port alone, so ranks on two nodes
  would believe they share memory ("open shm in SHMManager failed. errno: 2"); the node's
  address in the name makes them fall back to torch.distributed (Gloo), as the mp backend does.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import socket
import sys

RAY_RESOURCE = "llmops_cpu_rank"
PATCHED = ("vllm.platforms.cpu", "vllm.v1.executor.ray_executor_v2", "vllm.v1.executor.ray_utils",
           "vllm.distributed.device_communicators.cpu_communicator")


def _node_and_device_ids(_worker):
    import ray
    return ray.get_runtime_context().get_node_id(), [0]


def _patch(module):
    if module.__name__ == "vllm.platforms.cpu":
        module.CpuPlatform.ray_device_key = RAY_RESOURCE
    elif module.__name__ == "vllm.distributed.device_communicators.cpu_communicator":
        group_name = module._CPUSHMDistributed.make_group_name

        def make_group_name(communicator):
            return "%s-%s" % (group_name(communicator), os.environ.get("VLLM_HOST_IP") or socket.gethostname())
        module._CPUSHMDistributed.make_group_name = staticmethod(make_group_name)
    else:
        for name in ("RayWorkerProc", "RayWorkerWrapper"):
            if hasattr(module, name):
                getattr(module, name).get_node_and_physical_gpu_ids = _node_and_device_ids


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds the modules to patch with the normal machinery and patches each once loaded."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                _patch(module)
            spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchAfterImport())
