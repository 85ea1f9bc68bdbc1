# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inputs preflight decides beyond each role's argument_specs (which know types and
choices, not ranges): every number in its range, every list given as a list, vLLM flags the
collection sets itself, environment names, and the interfaces and addresses a node really has.
One message per problem, naming host, variable, value and fix."""

from __future__ import annotations

import json
import re

PORT = (1, 65535, "a port from 1 to 65535")
SECONDS = (1, None, "a whole number of seconds, 1 or more")

# Settings whose range no role's own preflight checks: (lowest, highest or None, what fits).
RANGES = {
    "llmops_reboot_timeout": SECONDS,
    # Ray refuses an object store under 75 MiB (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES).
    "ray_cluster_object_store_bytes": (75 * 1024 * 1024, None, "a size in bytes, at least 78643200 (75 MiB, Ray's minimum)"),
    "ray_cluster_ready_timeout": SECONDS,
    "ray_cluster_fabric_bytes": (1, None, "a size in bytes, 1 or more"),
    "ray_cluster_fabric_timeout": SECONDS,
    "serving_image_progress_interval": SECONDS,
    "vllm_benchmark_num_prompts": (1, None, "a number of prompts, 1 or more"),
    "vllm_benchmark_seed": (0, None, "a whole number, 0 or more"),
    "vllm_benchmark_ready_timeout": SECONDS,
    "vllm_serve_cpu_kv_cache_bytes": (1, None, "a size in bytes, 1 or more"),
    "vllm_serve_instance_base_port": PORT,
    "vllm_serve_ready_timeout": SECONDS,
    "vllm_serve_ready_poll_interval": SECONDS,
    "weights_progress_interval": SECONDS,
    "weights_fetch_timeout": SECONDS,
}

# vLLM flags the collection sets from its own variables; vLLM reads `_` and `-` alike.
SET_BY_THE_COLLECTION = {
    "--api-key": "take it out (command lines are visible to every process) and set vllm_serve_api_key, from a vault",
    "--host": "take it out and set vllm_serve_host (the private address by default; 0.0.0.0 opens every interface)",
    "--port": "take it out and set vllm_serve_port",
    "--served-model-name": "take it out and set vllm_serve_served_model_name",
    "--tensor-parallel-size": "take it out and set vllm_serve_tensor_parallel_size",
    "--pipeline-parallel-size": "take it out and set vllm_serve_pipeline_parallel_size",
    "--distributed-executor-backend": "take it out and set vllm_serve_distributed_backend",
}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The interface settings each name one interface of the node, checked against its facts.
INTERFACE_SETTINGS = ("ray_cluster_socket_ifname", "vllm_serve_socket_ifname")


def shown(value):
    """A value as the message shows it: JSON, so an empty string reads '' and a list reads as one."""
    if value is None or value == "":
        return "''"
    return json.dumps(value, default=str, sort_keys=True) if not isinstance(value, str) else value


def whole(value):
    """value as an int (-e passes strings), None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def flag_name(argument):
    """The flag an extra argument sets, as vLLM reads it: --api_key=x gives --api-key."""
    if not isinstance(argument, str) or not argument.startswith("--"):
        return None
    return "--" + argument[2:].split("=", 1)[0].replace("_", "-")


def masked_arguments(arguments):
    """Extra arguments as a message may show them: the value of an --api-key replaced (in a
    list, or in text given where a list belongs)."""
    if isinstance(arguments, str):
        return " ".join(masked_arguments(arguments.split()))
    if not isinstance(arguments, list):
        return arguments
    masked, hide_next = [], False
    for argument in arguments:
        flag = flag_name(argument)
        if hide_next:
            masked.append("********")
        elif flag == "--api-key" and "=" in argument:
            masked.append(argument.split("=", 1)[0] + "=********")
        else:
            masked.append(argument)
        hide_next = flag == "--api-key" and "=" not in argument
    return masked


def input_problems(variables, host, role_options, interfaces=()):
    """Why the host's settings cannot work, one message each: "On <host>: <name>=<value> is
    wrong: <why>. Fix: <fix>".

    variables: the host's variables; role_options: role -> its argument_specs options (for the
    list-typed settings); interfaces: the node's interface names (ansible_facts.interfaces).
    """
    problems = []

    def problem(name, why, fix):
        seen = masked_arguments(variables.get(name)) if name == "vllm_serve_extra_args" else variables.get(name)
        problems.append("On %s: %s=%s is wrong: %s. Fix: %s" % (host, name, shown(seen), why, fix))

    for options in role_options.values():
        for name, option in sorted(options.items()):
            if option.get("type") == "list" and isinstance(variables.get(name), str):
                problem(name, "it is text, and Ansible would split it at commas into a list of other values",
                        "give a YAML list, e.g. -e '{\"%s\": [\"--max-num-seqs\", \"64\"]}' on the command line "
                        "or a list in your inventory." % name if name.endswith("extra_args")
                        else "give a YAML list (in your inventory, or as JSON with -e).")
    for name, (lowest, highest, what) in sorted(RANGES.items()):
        if name not in variables:
            continue
        number = whole(variables[name])
        if number is None or number < lowest or (highest is not None and number > highest):
            problem(name, "not %s" % what, "set it to %s." % what)
    timeout, interval = whole(variables.get("vllm_serve_ready_timeout")), whole(variables.get("vllm_serve_ready_poll_interval"))
    if timeout and interval and interval > timeout:
        problem("vllm_serve_ready_poll_interval", "longer than vllm_serve_ready_timeout (%d s)" % timeout,
                "set it below vllm_serve_ready_timeout (5 s is the default).")
    extra_args = variables.get("vllm_serve_extra_args")
    for argument in extra_args if isinstance(extra_args, list) else []:
        flag = flag_name(argument)
        if flag in SET_BY_THE_COLLECTION:
            problem("vllm_serve_extra_args", "%s sets %s, which the collection sets itself" % (argument.split("=", 1)[0], flag),
                    SET_BY_THE_COLLECTION[flag] + ".")
    extra_env = variables.get("vllm_serve_extra_env")
    wrong_names = [str(name) for name in sorted(extra_env) if not ENV_NAME.match(str(name))] if isinstance(extra_env, dict) else []
    if wrong_names:  # the names only: the values may be tokens
        problems.append("On %s: vllm_serve_extra_env is wrong: %s %s not an environment variable name. Fix: use names "
                        "of letters, digits and _ that do not start with a digit."
                        % (host, ", ".join(repr(name) for name in wrong_names), "is" if len(wrong_names) == 1 else "are"))
    for name in INTERFACE_SETTINGS:
        wanted = variables.get(name)
        if wanted and interfaces and wanted not in interfaces:
            problem(name, "this node has no interface of that name (it has %s)" % ", ".join(sorted(interfaces)),
                    "name the interface of the private network on every node, or leave it empty for the "
                    "interface of the route to the peers.")
    address = str(variables.get("llmops_private_address") or "")
    if ":" in address:
        problems.append("On %s: its private address %s is an IPv6 address (llmops_node_address, or the default "
                        "route's); the collection builds its URLs, Ray and NCCL settings for IPv4 only. Fix: set "
                        "llmops_node_address to the node's IPv4 address on the private network." % (host, address))
    return problems
