# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This node's serving containers and what the run must do to them, decided on the control node
(see plugins/modules/serving_containers.py for its documentation)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.llmops.inference.plugins.module_utils._plans import max_num_seqs, vllm_specs
from ansible_collections.llmops.inference.plugins.module_utils._serving import serving_changes

# What shapes each container: the keys vllm_specs reads (module_utils/_plans.py).
SETTINGS = dict(
    name=dict(type="str", required=True),
    image=dict(type="str", required=True),
    image_id=dict(type="str", required=True),
    model_source=dict(type="str", required=True),
    listen=dict(type="str", required=True),
    probe_address=dict(type="str", required=True),
    port=dict(type="int", required=True),
    instance_base_port=dict(type="int", required=True),
    instances=dict(type="int", required=True),
    vcpus=dict(type="int", required=True),
    served_model_name=dict(type="str", required=True),
    max_model_len=dict(type="int", required=True),
    max_num_seqs=dict(type="int", required=True),
    accelerator_memory_mib=dict(type="int", default=0),
    trust_remote_code=dict(type="bool", default=False),
    dtype=dict(type="str", required=True),
    gpu_memory_utilization=dict(type="float", required=True),
    cpu_kv_cache_bytes=dict(type="int", required=True),
    enable_chunked_prefill=dict(type="bool", required=True),
    enforce_eager=dict(type="bool", required=True),
    reasoning_parser=dict(type="str", default=""),
    tool_call_parser=dict(type="str", default=""),
    extra_args=dict(type="list", elements="str", default=[]),
    extra_env=dict(type="dict", default={}),
    env_file=dict(type="str", required=True),
    api_key_sha256=dict(type="str", required=True, no_log=False),
    network_mode=dict(type="str", required=True),
    restart_policy=dict(type="str", required=True),
    shm_size=dict(type="str", required=True),
    host_ip=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    erdma_nics=dict(type="int", default=0),
    master_addr=dict(type="str", required=True),
    master_port=dict(type="int", required=True),
    ray=dict(type="dict", required=True, options=dict(
        container=dict(type="str", required=True),
        temp_dir=dict(type="str", required=True),
        token_file=dict(type="str", required=True, no_log=False),
    )),
)
ARGUMENT_SPEC = dict(
    plan=dict(type="dict", required=True),
    containers=dict(type="list", elements="dict", default=[]),
    **SETTINGS,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        plan = args["plan"]
        specs = vllm_specs(plan, {name: args[name] for name in SETTINGS})
        decided = serving_changes(specs, args["containers"], args["name"], multi_node=int(plan["nnodes"]) > 1)
        _flag, per_instance = max_num_seqs(plan["profile"], args["max_num_seqs"], args["accelerator_memory_mib"])
        result.update(decided, specs=specs, per_instance_sequences=per_instance, changed=False)
        return result
