"""serving_info on a real folder layout, with `ip` answered from a queue and the Docker Engine
API stood in for on a unix socket (tests/fixtures/fake_docker_api.py)."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._serving_info import model_folder, route_interface
from ansible_collections.llmops.inference.plugins.modules import serving_info

# `ip -o route get 10.0.0.12` on a two-NIC node (iproute2 6.1), the peer behind the second NIC.
ROUTE_OUTPUT = "10.0.0.12 dev eth1 src 10.0.0.11 uid 0 \\    cache \n"


@pytest.fixture
def ip_route(monkeypatch):
    from ansible.module_utils import basic

    calls = []

    def run_command(self, argv, **_kwargs):
        calls.append(argv)
        return 0, ROUTE_OUTPUT, ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/sbin/" + name)
    return calls


def published_model(tmp_path):
    """The weights phase's layout: the serving path is a symlink to a verified copy."""
    copy = tmp_path / "tiny.revisions" / "v1.1"
    copy.mkdir(parents=True)
    (copy / "config.json").write_text("{}")
    (tmp_path / "tiny").symlink_to("tiny.revisions/v1.1")
    return tmp_path / "tiny", copy


def test_one_pass_reports_the_model_copy_the_route_the_image_and_the_containers(tmp_path, docker, ip_route, run_module):
    from fake_docker_api import inspect_document

    serving_path, copy = published_model(tmp_path)
    docker.images["vllm/vllm-openai:v0.32.0"] = "sha256:" + "ab" * 32
    mine = inspect_document("vllm-serve")
    mine["Config"] = {"Labels": {"org.llmops.deployment": "vllm-serve", "org.llmops.spec-hash": "h"}}
    other = inspect_document("someone-else")
    other["Config"] = {"Labels": {"org.llmops.deployment": "other"}}
    docker.containers.update({"vllm-serve": mine, "someone-else": other})
    result, failed = run_module(serving_info.main, {
        "model_dir": str(serving_path), "peer": "10.0.0.12", "image": "vllm/vllm-openai:v0.32.0",
        "deployment": "vllm-serve", "docker_host": docker.docker_host})
    assert not failed, result
    assert result["model_config_exists"] and result["model_source"] == str(copy)
    assert result["route_interface"] == "eth1" and ip_route == [["/usr/sbin/ip", "-o", "route", "get", "10.0.0.12"]]
    assert result["image_id"] == "sha256:" + "ab" * 32
    assert [container["Names"] for container in result["containers"]] == [["/vllm-serve"]]
    assert result["containers"][0]["Labels"]["org.llmops.spec-hash"] == "h" and not result["changed"]


def test_a_node_without_the_image_or_the_model_says_so(tmp_path, docker, ip_route, run_module):
    result, failed = run_module(serving_info.main, {
        "model_dir": str(tmp_path / "missing"), "image": "vllm/vllm-openai:v0.32.0", "deployment": "vllm-serve",
        "docker_host": docker.docker_host})
    assert not failed and not result["model_config_exists"] and result["image_id"] == ""
    assert result["containers"] == [] and result["route_interface"] == "" and ip_route == []


def test_a_container_whose_network_peer_restarted_is_marked_and_watched_containers_reported(
        tmp_path, docker, ip_route, run_module):
    from fake_docker_api import inspect_document

    node = inspect_document("node-1", started_at="2026-12-01T11:00:00.000000000Z")
    stale = inspect_document("node-1-ray", network_mode="container:node-1", started_at="2026-12-01T10:00:00.000000000Z")
    stale["Config"] = {"Labels": {"org.llmops.deployment": "node-1-ray"}}
    docker.containers.update({"node-1": node, "node-1-ray": stale})
    result, failed = run_module(serving_info.main, {
        "image": "x:1", "deployment": "node-1-ray", "watch": ["node-1", "gone"], "docker_host": docker.docker_host})
    assert not failed, result
    assert result["model_source"] == "" and not result["model_config_exists"]  # no model_dir: skipped
    assert result["containers"][0]["StaleNetwork"].startswith("it shares the network of node-1, which restarted at")
    assert result["watched"] == {"node-1": "running", "gone": "missing"}
    # Started after its peer: nothing to repair.
    stale["State"]["StartedAt"] = "2026-12-01T12:00:00.000000000Z"
    result, failed = run_module(serving_info.main, {"image": "x:1", "deployment": "node-1-ray", "docker_host": docker.docker_host})
    assert result["containers"][0]["StaleNetwork"] == ""


def test_an_engine_that_does_not_answer_fails_naming_the_socket(tmp_path, ip_route, run_module):
    result, failed = run_module(serving_info.main, {
        "model_dir": str(tmp_path), "image": "x:1", "deployment": "d", "docker_host": "unix://%s/none.sock" % tmp_path})
    assert failed and "cannot ask the Docker engine at unix://" in result["msg"]


def test_helpers_on_their_own(tmp_path):
    assert route_interface("10.0.0.12 via 10.0.0.1 dev bond0 src 10.0.0.11 uid 0") == "bond0"
    assert route_interface("") == ""
    (tmp_path / "config.json").write_text("{}")
    assert model_folder(str(tmp_path)) == (True, str(tmp_path))


def test_secret_files_are_reported_by_digest_and_mode_never_by_content(tmp_path, docker, ip_route, run_module):
    import hashlib
    import os

    folder = tmp_path / "ray"
    folder.mkdir(mode=0o700)
    kept, copy = folder / "token", tmp_path / "copy"
    kept.write_text("s3cretTokenValue\n")  # as config_files keeps a secret
    copy.write_text("s3cretTokenValue")  # as it writes a copy from the secret's value
    os.chmod(kept, 0o600)
    os.chmod(copy, 0o644)
    result, failed = run_module(serving_info.main, {
        "image": "x:1", "deployment": "d", "docker_host": docker.docker_host,
        "secret_files": [str(kept), str(copy), str(tmp_path / "missing")]})
    assert not failed, result
    digest = hashlib.sha256(b"s3cretTokenValue").hexdigest()
    owner = "%d:%d" % (os.getuid(), os.getgid())
    assert result["secret_digests"][str(kept)] == {"sha256": digest, "mode": "0600", "owner": owner,
                                                   "folder_mode": "0700", "folder_owner": owner}
    assert result["secret_digests"][str(copy)]["sha256"] == digest
    assert result["secret_digests"][str(copy)]["mode"] == "0644"
    folder_mode = "%04o" % (os.stat(tmp_path).st_mode & 0o7777)
    assert result["secret_digests"][str(tmp_path / "missing")] == {"sha256": "", "mode": "", "owner": "",
                                                                   "folder_mode": folder_mode, "folder_owner": owner}
    assert "s3cretTokenValue" not in repr(result)
