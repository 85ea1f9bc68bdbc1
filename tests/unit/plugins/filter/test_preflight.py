"""The preflight filter that turns argument_specs errors into host / variable / value / fix."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.filter.preflight import (
    explain_argument_errors, failed_checks, gpu_health_problems, image_build_problems, serving_image_problems)

OPTIONS = {
    "vllm_serve": {
        "vllm_serve_profile": {"type": "str", "choices": ["auto", "nvidia", "vastai", "cpu"]},
        "vllm_serve_extra_env": {"type": "dict"},
        "vllm_serve_extra_args": {"type": "list", "elements": "str"},
    },
}


@pytest.mark.parametrize("error, variables, expected", [
    # As ansible-core 2.19's validate_argument_spec words them.
    ("value of vllm_serve_profile must be one of: auto, nvidia, vastai, cpu, got: gpu",
     {"vllm_serve_profile": "gpu"},
     'On head: vllm_serve_profile="gpu" is wrong: value of vllm_serve_profile must be one of: auto, nvidia, '
     "vastai, cpu, got: gpu. Fix: set vllm_serve_profile to one of auto, nvidia, vastai, cpu in your inventory "
     "(roles/vllm_serve/README.md)."),
    ("argument 'vllm_serve_extra_env' is of type list and we were unable to convert to dict: "
     "<class 'ansible.module_utils._internal._datatag._AnsibleTaggedList'> cannot be converted to a dict",
     {"vllm_serve_extra_env": ["A=1"]},
     'On head: vllm_serve_extra_env=["A=1"] is wrong: argument \'vllm_serve_extra_env\' is of type list and we '
     "were unable to convert to dict: list cannot be converted to a dict. Fix: set vllm_serve_extra_env to a "
     "mapping (key: value) in your inventory (roles/vllm_serve/README.md)."),
])
def test_each_error_names_host_variable_value_and_fix(error, variables, expected):
    assert explain_argument_errors([error], "head", OPTIONS, variables) == [expected]


def test_list_elements_are_named_in_the_fix():
    errors = ["Elements value for option 'vllm_serve_extra_args' is of type dict"]
    line = explain_argument_errors(errors, "head", OPTIONS, {"vllm_serve_extra_args": [{"a": 1}]})[0]
    assert line.endswith("Fix: set vllm_serve_extra_args to a list of strings in your inventory (roles/vllm_serve/README.md).")


def test_an_error_naming_no_known_variable_is_kept_as_it_is():
    assert explain_argument_errors(["something odd"], "head", OPTIONS, {}) == [
        "On head: something odd (each role's README lists its variables)."]


def test_a_secret_of_the_wrong_type_is_not_printed():
    options = {"weights": {"weights_modelscope_token": {"type": "str", "no_log": True}}}
    errors = ["argument 'weights_modelscope_token' is of type dict and we were unable to convert to str: {'t': 'ms-secret'}"]
    line = explain_argument_errors(errors, "head", options, {"weights_modelscope_token": {"t": "ms-secret"}})[0]
    assert "ms-secret" not in line and "weights_modelscope_token=(hidden) is wrong" in line


def test_no_error_no_line():
    assert explain_argument_errors([], "head", OPTIONS, {}) == []


def test_every_roles_variables_are_found_from_its_own_options():
    """No role list typed out: the shared settings and the benchmark's are named like any other."""
    options = {"llmops": {"llmops_reboot_policy": {"type": "str", "choices": ["report", "reboot"]}},
               "vllm_benchmark": {"vllm_benchmark_num_prompts": {"type": "int"}}}
    errors = ["value of llmops_reboot_policy must be one of: report, reboot, got: sometimes",
              "argument 'vllm_benchmark_num_prompts' is of type str and we were unable to convert to int"]
    seen = {"llmops_reboot_policy": "sometimes", "vllm_benchmark_num_prompts": "many"}
    lines = explain_argument_errors(errors, "gpu-node-1", options, seen)
    assert lines[0] == (
        'On gpu-node-1: llmops_reboot_policy="sometimes" is wrong: value of llmops_reboot_policy must be one of: '
        "report, reboot, got: sometimes. Fix: set llmops_reboot_policy to one of report, reboot in your inventory "
        "(roles/llmops/README.md).")
    assert lines[1].startswith('On gpu-node-1: vllm_benchmark_num_prompts="many" is wrong')


def test_each_failed_check_names_host_variable_value_and_fix():
    checks = [
        {"name": "vllm_serve_port", "seen": 70000, "ok": False, "fix": "set it to a port from 1 to 65535."},
        {"name": "vllm_serve_instances", "seen": 2, "ok": True, "fix": "set it to 1 or more."},
        # As a template may hand them over: the text of a boolean, a folded fix with its newline.
        {"name": "vllm_serve_max_model_len", "seen": "0", "ok": "False", "fix": "set it to the longest context.\n"},
        {"name": "vllm_serve_nodes", "seen": "1", "ok": "True", "fix": "unused"},
    ]
    assert failed_checks(checks, "gpu-1") == [
        "On gpu-1: vllm_serve_port=70000 is wrong. Fix: set it to a port from 1 to 65535.",
        "On gpu-1: vllm_serve_max_model_len=0 is wrong. Fix: set it to the longest context.",
    ]
    assert failed_checks(checks[:1], "gpu-1", quote=True) == [
        "On gpu-1: vllm_serve_port='70000' is wrong. Fix: set it to a port from 1 to 65535."]
    assert failed_checks([], "gpu-1") == []


LOST = {"health": {"problems": ["nvidia-smi exit 15 (a GPU has fallen off the bus or is otherwise inaccessible): Unable to "
                                "determine the device handle for GPU 0000:2A:00.0: GPU is lost.; 7 of the 8 GPU(s) on the PCI bus answered"],
                   "mig": [], "warnings": []}}
MIG = {"health": {"problems": [], "mig": ["GPU 0 (0000:07:00.0) has MIG mode enabled (3 MIG device(s))"], "warnings": []}}


def test_a_lost_gpu_is_refused_with_its_evidence_and_the_fix():
    [problem] = gpu_health_problems(LOST, "gpu-1")
    assert problem.startswith("On gpu-1: nvidia-smi exit 15 (a GPU has fallen off the bus")
    assert "7 of the 8 GPU(s) on the PCI bus answered. Fix: bring the GPU back" in problem
    assert "take the node out of inference_cluster" in problem


def test_mig_is_refused_unless_the_inventory_allows_it():
    [problem] = gpu_health_problems(MIG, "gpu-2")
    assert problem.startswith("On gpu-2: GPU 0 (0000:07:00.0) has MIG mode enabled (3 MIG device(s)); vLLM would see MIG slices")
    assert "nvidia-smi -mig 0" in problem and "llmops_nvidia_mig_allowed: true" in problem
    assert gpu_health_problems(MIG, "gpu-2", "True") == []


def test_healthy_cpu_and_older_facts_have_no_problem():
    assert gpu_health_problems({"health": {"problems": [], "mig": [], "warnings": ["GPU 3 has row remaps pending"]}}, "h") == []
    assert gpu_health_problems({"vendor": "cpu"}, "h") == [] and gpu_health_problems(None, "h") == []


PROBE = {"present": True, "probe": {"python": "3.12.3", "vllm": "0.32.0", "ray": "2.60.0", "torch": "2.10.0",
                                    "torch_cuda": "13.0", "erdma_provider": False}}


def test_the_image_needs_follow_the_plan_and_the_nodes_driver():
    plan = {"profile": "nvidia", "image": "vllm/vllm-openai:v0.32.0"}
    answering = {"driver": {"answered": True, "version": "570.133.20"}, "erdma_nic_count": 2}
    found = serving_image_problems(PROBE, "gpu-1", plan, answering, "")
    assert len(found) == 2 and "the node's driver is 570.133.20" in found[0] and "erdma verbs provider" in found[1]
    # A driver not installed yet: the branch the drivers phase installs.
    assert serving_image_problems(PROBE, "gpu-1", plan, {"driver": {"answered": False}}, "580") == []
    # A node on 570 that the drivers phase takes to 580 is judged by 580.
    assert serving_image_problems(PROBE, "gpu-1", plan, dict(answering, erdma_nic_count=0), "580") == []
    assert "the node's driver is 570" in serving_image_problems(PROBE, "gpu-1", plan, {"driver": {"answered": False}}, "570")[0]
    # CPU: neither the driver nor eRDMA matters.
    assert serving_image_problems(PROBE, "cpu-1", dict(plan, profile="cpu"), answering) == []


def test_an_engine_image_without_ray_passes_when_the_collection_derives_the_serving_image():
    plan = {"profile": "cpu", "image": "llmops/x:1-ray2.60.0-abc", "engine_image": "x:1", "image_derived": True}
    engine = {"present": True, "probe": dict(PROBE["probe"], ray=None)}
    assert serving_image_problems(engine, "h", plan, {}, engine=True) == []
    [problem] = serving_image_problems(engine, "h", plan, {})
    assert problem.startswith("On h: the serving image llmops/x:1-ray2.60.0-abc has no Ray")
    [problem] = serving_image_problems(dict(engine, probe=dict(engine["probe"], vllm=None)), "h", plan, {}, engine=True)
    assert problem.startswith("On h: the serving image x:1 has no vLLM")


def test_an_engine_image_without_the_erdma_provider_passes_when_the_derivation_adds_it():
    plan = {"profile": "nvidia", "image": "llmops/vllm-openai:v0.32.0-ray2.60.0-abc", "engine_image": "vllm/vllm-openai:v0.32.0",
            "image_derived": True, "erdma_packages": ["/srv/erdma/ibverbs-providers_44.0-2_amd64.deb"]}
    node = {"driver": {"answered": True, "version": "580.159.04"}, "erdma_nic_count": 2}
    assert serving_image_problems(PROBE, "gpu-1", plan, node, engine=True) == []
    # The derived image itself must hold it, and without packages the fix names the variable.
    assert "erdma verbs provider" in serving_image_problems(PROBE, "gpu-1", plan, node)[0]
    [problem] = serving_image_problems(PROBE, "gpu-1", dict(plan, erdma_packages=[]), node, engine=True)
    assert "Fix: set serving_image_erdma_packages to the eRDMA user-space packages" in problem


SETTINGS = {"derive": True, "ray_requirement": "ray==2.60.0", "pip_find_links": "", "pip_index_url": "", "build_host": "",
            "mirror_port": 18091, "timeout": 3600}


def test_the_image_build_settings_are_checked_with_host_value_and_fix():
    assert image_build_problems("h", SETTINGS, ["h", "w"]) == []
    assert image_build_problems("h", dict(SETTINGS, mirror_port="18091", timeout="60"), ["h"]) == []  # -e gives strings
    [problem] = image_build_problems("h", dict(SETTINGS, ray_requirement="ray>=2"), ["h"])
    assert problem == ("On h: serving_image_ray_requirement='ray>=2' is not one exact Ray version. Fix: set it like "
                       "ray==2.60.0 (extras allowed: ray[default]==2.60.0), the Ray every node of the cluster runs.")
    assert image_build_problems("h", dict(SETTINGS, derive=False, ray_requirement="ray>=2"), ["h"]) == []
    found = image_build_problems("h", dict(SETTINGS, pip_find_links="wheels", pip_index_url="http://x", build_host="z",
                                           mirror_port=0, timeout="soon"), ["h", "w"])
    assert [text.split(" ")[2].split("=")[0] for text in found] == [
        "serving_image_pip_find_links", "serving_image_pip_find_links", "serving_image_build_host",
        "serving_image_mirror_port", "serving_image_timeout"]
    assert "Fix: name one of h, w, or leave it empty for the head." in found[2]


def test_the_erdma_packages_must_be_files_of_one_kind_on_the_control_node(tmp_path):
    deb, rpm = tmp_path / "ibverbs-providers_44.0-2_amd64.deb", tmp_path / "rdma-core-44.0.rpm"
    deb.write_bytes(b"!<arch>\n")
    rpm.write_bytes(b"\xed\xab\xee\xdb")
    assert image_build_problems("h", dict(SETTINGS, erdma_packages=[str(deb)]), ["h"]) == []
    [problem] = image_build_problems("h", dict(SETTINGS, erdma_packages=str(deb)), ["h"])
    assert problem.startswith("On h: serving_image_erdma_packages='%s' is a string. Fix: a list of package files" % deb)
    found = image_build_problems("h", dict(SETTINGS, erdma_packages=["pkgs/a.deb", str(tmp_path / "gone.deb")]), ["h"])
    assert len(found) == 2 and all("is not a file on the control node" in text for text in found)
    [problem] = image_build_problems("h", dict(SETTINGS, erdma_packages=[str(deb), str(rpm)]), ["h"])
    assert "mixes kinds or holds files that are neither .deb nor .rpm" in problem
