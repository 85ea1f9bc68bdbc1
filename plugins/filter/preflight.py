# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the preflight phase uses to turn a role's argument_specs errors into a message
that names the host, the variable, the value seen and the fix."""

from __future__ import annotations

import json
import os
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.llmops.inference.plugins.module_utils._images import driver_branch as branch_of
from ansible_collections.llmops.inference.plugins.module_utils._images import image_problems, requirement_version
from ansible_collections.llmops.inference.plugins.module_utils._inputs import input_problems as _input_problems
from ansible_collections.llmops.inference.plugins.module_utils._inputs import shown, whole

# Ansible's internal type names in its messages, e.g. <class '..._AnsibleTaggedList'>: "list".
INTERNAL_TYPE = re.compile(r"<class '(?:[\w.]*\.)?_?(?:AnsibleTagged)?(\w+)'>")


def expectation(option):
    """What a valid value looks like, from the option's spec."""
    if option.get("choices"):
        return "one of " + ", ".join(str(choice) for choice in option["choices"])
    kind = option.get("type", "str")
    words = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false",
             "dict": "a mapping (key: value)", "list": "a list", "path": "an absolute path"}
    text = words.get(kind, "a " + kind)
    plurals = {"str": "strings", "int": "whole numbers", "float": "numbers", "dict": "mappings", "path": "paths"}
    if kind == "list" and option.get("elements"):
        text += " of " + plurals.get(option["elements"], option["elements"] + "s")
    return text


def mentioned_options(error, options):
    """The role's options an error names, in the order it names them."""
    found = []
    for name in options:
        match = re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name), error)
        if match:
            found.append((match.start(), name))
    return [name for _start, name in sorted(found)]


def explain_argument_errors(errors, host, role_options, variables):
    """One line per error: host, variable, value seen, what the spec wants, where it is documented.

    errors: the argument_errors of one ansible.builtin.validate_argument_spec over every role's
    options at once; role_options: role -> its argument_specs main options; variables: the
    host's variables (hostvars[host]).
    """
    owner = {name: role for role, options in role_options.items() for name in options}
    merged = {name: option for options in role_options.values() for name, option in options.items()}
    lines = []
    for error in errors or []:
        error = INTERNAL_TYPE.sub(lambda match: match.group(1).lower(), str(error))
        names = mentioned_options(error, merged)
        if not names:
            lines.append("On %s: %s (each role's README lists its variables)." % (host, error))
            continue
        name = names[0]
        if merged[name].get("no_log"):
            seen = "(hidden)"
            error = error.replace(str(variables.get(name)), "********") if variables.get(name) else error
        else:
            seen = json.dumps(variables.get(name), default=str, sort_keys=True) if name in variables else "(not set)"
        lines.append("On %s: %s=%s is wrong: %s. Fix: set %s to %s in your inventory (roles/%s/README.md)."
                     % (host, name, seen, error, name, expectation(merged[name]), owner[name]))
    return lines


def failed_checks(checks, host, quote=False):
    """One message per failed check of a role's preflight, naming host, variable, value and fix.

    checks: a list of {name, seen, ok, fix}, one per input (ok may arrive as the text True or
    False from a template); host: the node checked; quote: put the value seen in quotes.
    Each message reads "On <host>: <name>=<seen> is wrong. Fix: <fix>".
    """
    problems = []
    for check in checks:
        # As the assert loop it replaced read it (`| bool`).
        if not boolean(check.get("ok"), strict=False):
            seen = "'%s'" % check.get("seen") if quote else shown(check.get("seen"))
            problems.append("On %s: %s=%s is wrong. Fix: %s" % (host, check["name"], seen, str(check["fix"]).strip()))
    return problems


def gpu_health_problems(accelerators, host, mig_allowed=False):
    """Why a node's GPUs cannot be planned on, one message each with its evidence and fix.

    accelerators: the node's llmops_accelerators fact (its health, from accelerator_facts);
    host: the node; mig_allowed: llmops_nvidia_mig_allowed (MIG mode is refused unless true).
    """
    health = (accelerators or {}).get("health") or {}
    problems = ["On %s: %s. Fix: bring the GPU back (see the kernel log for Xid errors; a reset or a reboot, "
                "or reseat it), or take the node out of inference_cluster." % (host, problem)
                for problem in health.get("problems") or []]
    if health.get("mig") and not boolean(mig_allowed, strict=False):
        problems.append("On %s: %s; vLLM would see MIG slices, not whole GPUs. Fix: turn MIG off "
                        "(nvidia-smi -mig 0, then a GPU reset), or set llmops_nvidia_mig_allowed: true "
                        "to plan on the node as it is." % (host, "; ".join(health["mig"])))
    return problems


def serving_image_problems(probe, host, plan, accelerators, driver_branch="", engine=False):
    """Why the serving image cannot serve the plan on this node, one message each with the fix.

    probe: the node's image_probe result; host: the node; plan: llmops_plan; accelerators:
    the node's llmops_accelerators fact; driver_branch: nvidia_driver_branch (the driver the
    drivers phase installs, used while the node's own driver does not answer yet); engine:
    the probe is of the engine image the serving image is derived from (Ray is added then, and
    the eRDMA user space where the plan names packages for it).
    """
    nvidia = plan.get("profile") == "nvidia"
    driver = (accelerators or {}).get("driver") or {}
    # The newer of the driver the node runs and the branch the drivers phase installs: a node
    # on 570 about to get 580 is judged by 580.
    versions = [version for version in (driver.get("version") if driver.get("answered") else "", driver_branch)
                if branch_of(version) is not None]
    needs = {
        # The cluster phase forms the Ray cluster with the serving image on every node.
        "ray": not engine,
        "driver": max(versions, key=branch_of) if nvidia and versions else "",
        "erdma": nvidia and int((accelerators or {}).get("erdma_nic_count") or 0) > 0
        and not (engine and plan.get("erdma_packages")),
    }
    return image_problems(probe or {}, host, plan.get("engine_image" if engine else "image", ""), needs)


def image_build_problems(host, settings, cluster_hosts):
    """Why the serving image's build settings cannot work, one message each with the fix.

    settings: derive, ray_requirement, pip_find_links, pip_index_url, erdma_packages,
    build_host, mirror_port, timeout (the serving_image_* variables); cluster_hosts:
    groups['inference_cluster']. Runs on the control node, where the eRDMA packages are.
    """
    problems = []
    where = "On %s: " % host
    if boolean(settings.get("derive"), strict=False):
        if requirement_version(settings.get("ray_requirement")) is None:
            problems.append(where + "serving_image_ray_requirement=%r is not one exact Ray version. Fix: set it like "
                            "ray==2.60.0 (extras allowed: ray[default]==2.60.0), the Ray every node of the cluster runs."
                            % settings.get("ray_requirement"))
        if settings.get("pip_find_links") and settings.get("pip_index_url"):
            problems.append(where + "serving_image_pip_find_links and serving_image_pip_index_url are both set. Fix: "
                            "set one - a folder of wheels on the build node, or a package index.")
        if settings.get("pip_find_links") and not str(settings["pip_find_links"]).startswith("/"):
            problems.append(where + "serving_image_pip_find_links=%r is not an absolute path. Fix: name the folder of "
                            "wheels on the build node by its absolute path." % settings["pip_find_links"])
    packages = settings.get("erdma_packages") or []
    if isinstance(packages, str):
        problems.append(where + "serving_image_erdma_packages=%r is a string. Fix: a list of package files, e.g. "
                        "[/srv/erdma/libibverbs1_44.0-2_amd64.deb, /srv/erdma/ibverbs-providers_44.0-2_amd64.deb]."
                        % packages)
        packages = []
    for path in packages:
        if not str(path).startswith("/") or not os.path.isfile(str(path)):
            problems.append(where + "serving_image_erdma_packages names %r, which is not a file on the control node "
                            "(by absolute path). Fix: name each eRDMA package by its absolute path on the control node."
                            % (path,))
    kinds = {os.path.splitext(str(path))[1] for path in packages}
    if kinds - {".deb", ".rpm"} or len(kinds) > 1:
        problems.append(where + "serving_image_erdma_packages=%r mixes kinds or holds files that are neither .deb nor "
                        ".rpm. Fix: the .deb files (Debian, Ubuntu images) or the .rpm files (Alibaba Cloud Linux) of "
                        "the eRDMA user space for the engine image's OS." % (packages,))
    if settings.get("build_host") and settings["build_host"] not in cluster_hosts:
        problems.append(where + "serving_image_build_host=%r is not in inference_cluster. Fix: name one of %s, or leave "
                        "it empty for the head." % (settings["build_host"], ", ".join(cluster_hosts)))
    port = whole(settings.get("mirror_port"))
    if port is None or not 1 <= port <= 65535:
        problems.append(where + "serving_image_mirror_port=%r is not a port. Fix: a number from 1 to 65535, open between "
                        "the nodes." % (settings.get("mirror_port"),))
    if (whole(settings.get("timeout")) or 0) <= 0:
        problems.append(where + "serving_image_timeout=%r is not a number of seconds. Fix: a whole number above 0."
                        % (settings.get("timeout"),))
    return problems


def input_problems(variables, host, role_options, interfaces=None):
    """Why the host's settings cannot work beyond their types and choices, one message each
    naming host, variable, value and fix: a number out of its range, a list given as text, a
    vLLM flag the collection sets itself in vllm_serve_extra_args (read as vLLM reads it, with
    _ and - alike), an environment name that is not one, an interface the node does not have,
    an IPv6 private address.

    variables: hostvars[host]; role_options: role -> its argument_specs options; interfaces:
    ansible_facts.interfaces of the node.
    """
    return _input_problems(variables, host, role_options, interfaces or ())


class FilterModule:
    def filters(self):
        return {"explain_argument_errors": explain_argument_errors, "failed_checks": failed_checks,
                "gpu_health_problems": gpu_health_problems, "image_build_problems": image_build_problems,
                "input_problems": input_problems, "serving_image_problems": serving_image_problems}
