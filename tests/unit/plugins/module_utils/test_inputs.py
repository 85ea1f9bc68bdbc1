"""The settings preflight decides beyond types and choices (plugins/module_utils/_inputs.py),
with the cases a new user tried on the sandbox (issue 22)."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._inputs import flag_name, input_problems

OPTIONS = {"vllm_serve": {"vllm_serve_extra_args": {"type": "list", "elements": "str"},
                          "vllm_serve_port": {"type": "int"}},
           "ray_cluster": {"ray_cluster_extra_args": {"type": "list", "elements": "str"}}}
GOOD = {"vllm_serve_extra_args": ["--max-num-seqs", "64"], "vllm_serve_ready_timeout": 1800,
        "vllm_serve_ready_poll_interval": 5, "ray_cluster_ready_timeout": 300, "weights_progress_interval": 10,
        "ray_cluster_object_store_bytes": 4294967296, "vllm_serve_extra_env": {"NCCL_DEBUG": "INFO"},
        "llmops_private_address": "10.0.0.11", "ray_cluster_socket_ifname": "eth1"}


def problems(**changed):
    return input_problems(dict(GOOD, **changed), "gpu-1", OPTIONS, ["lo", "eth0", "eth1"])


def test_good_settings_pass_and_numbers_may_come_as_text_from_the_command_line():
    assert problems() == []
    assert problems(vllm_serve_ready_timeout="600", ray_cluster_ready_timeout="30") == []


def test_a_list_given_as_text_is_refused_not_split():
    [problem] = problems(vllm_serve_extra_args="--max-num-seqs 64")
    assert problem.startswith("On gpu-1: vllm_serve_extra_args=--max-num-seqs 64 is wrong: it is text")
    assert """Fix: give a YAML list, e.g. -e '{"vllm_serve_extra_args": ["--max-num-seqs", "64"]}'""" in problem


@pytest.mark.parametrize("name, value, fits", [
    ("ray_cluster_ready_timeout", 0, "a whole number of seconds, 1 or more"),
    ("vllm_serve_ready_timeout", 0, "a whole number of seconds, 1 or more"),
    ("vllm_serve_ready_poll_interval", 0, "a whole number of seconds, 1 or more"),
    ("weights_progress_interval", 0, "a whole number of seconds, 1 or more"),
    ("ray_cluster_object_store_bytes", -5, "at least 78643200 (75 MiB, Ray's minimum)"),
    ("vllm_serve_instance_base_port", 70000, "a port from 1 to 65535"),
    ("weights_fetch_timeout", "soon", "a whole number of seconds, 1 or more"),
])
def test_every_number_is_checked_against_its_range(name, value, fits):
    found = problems(**{name: value})
    assert found and found[0].startswith("On gpu-1: %s=%s is wrong: not " % (name, value)) and fits in found[0]


def test_a_poll_interval_longer_than_the_timeout_is_refused():
    [problem] = problems(vllm_serve_ready_timeout=10, vllm_serve_ready_poll_interval=30)
    assert "vllm_serve_ready_poll_interval=30 is wrong: longer than vllm_serve_ready_timeout (10 s)" in problem


@pytest.mark.parametrize("argument, flag", [
    ("--api_key", "--api-key"), ("--api-key=abc", "--api-key"), ("--host", "--host"), ("--served_model_name", "--served-model-name"),
])
def test_flags_the_collection_sets_are_refused_as_vllm_reads_them(argument, flag):
    [problem] = problems(vllm_serve_extra_args=[argument, "x"])
    assert "sets %s, which the collection sets itself" % flag in problem
    assert "abc" not in problem  # a key on the command line is not printed again
    assert flag_name("-x") is None and flag_name("--max_num_seqs=4") == "--max-num-seqs"


def test_a_key_given_as_a_flag_is_masked_in_the_message():
    [problem] = problems(vllm_serve_extra_args=["--api_key", "sk-leaked", "--enforce-eager"])
    assert 'vllm_serve_extra_args=["--api_key", "********", "--enforce-eager"] is wrong' in problem
    assert "sk-leaked" not in problem
    # Given as text where a list belongs: refused as text, the key masked too.
    [problem] = problems(vllm_serve_extra_args="--api-key sk-leaked --enforce-eager")
    assert "vllm_serve_extra_args=--api-key ******** --enforce-eager is wrong: it is text" in problem


def test_environment_names_interfaces_and_addresses_are_checked_on_the_node():
    [problem] = problems(vllm_serve_extra_env={"NCCL-DEBUG": "INFO", "HF_TOKEN": "hf_secret"})
    assert "'NCCL-DEBUG' is not an environment variable name" in problem and "hf_secret" not in problem
    [problem] = problems(ray_cluster_socket_ifname="bond0")
    assert "ray_cluster_socket_ifname=bond0 is wrong: this node has no interface of that name (it has eth0, eth1, lo)" in problem
    [problem] = problems(llmops_private_address="fd00::11")
    assert "its private address fd00::11 is an IPv6 address" in problem and "Fix: set llmops_node_address" in problem


def test_an_empty_value_is_shown_as_two_quotes():
    [problem] = input_problems({"ray_cluster_ready_timeout": ""}, "h", {})
    assert problem.startswith("On h: ray_cluster_ready_timeout='' is wrong")
