"""The cluster phase's verdict over what ray_cluster_info saw, on real probe captures."""

from __future__ import annotations

from ansible_collections.llmops.inference.plugins.filter import cluster
from ansible_collections.llmops.inference.plugins.module_utils._ray import parse_probe_output, summarize_cluster
from conftest import fixture_text


def seen(name):
    return summarize_cluster(parse_probe_output(fixture_text(name)))


EXPECTED = {"head": "172.30.11.2", "w1": "172.30.11.3", "w2": "172.30.11.4"}


def test_a_full_cluster_on_one_version_has_no_problem():
    assert cluster.cluster_problems(seen("ray/probe-3-nodes.txt"), EXPECTED) == []


def test_a_missing_node_is_named_with_its_address():
    [problem] = cluster.cluster_problems(seen("ray/probe-worker-lost.txt"), EXPECTED)
    assert problem.startswith("Ray cluster: 2 of 3 node(s) alive; missing: w2 (172.30.11.4); lost (were alive): "
                              "172.30.11.4. Fix: ")


def test_too_few_gpus_for_the_plan_and_a_version_mismatch_are_named():
    info = dict(seen("ray/probe-3-nodes.txt"), version_mismatch=True)
    problems = cluster.cluster_problems(info, EXPECTED, needed_accelerators=16)
    assert problems[0].startswith("Ray nodes run different versions (172.30.11.2: Ray 2.60.0")
    assert problems[1].startswith("Ray sees 0 GPU across the alive nodes but the serving plan needs 16")


def test_no_answer_at_all_says_where_to_look():
    assert cluster.cluster_problems({"msg": "cannot read the Ray cluster: timeout"}, EXPECTED) == [
        "The Ray cluster could not be read: cannot read the Ray cluster: timeout. Look at the head's Ray container log "
        "(docker logs <llmops_ray_container_name>)."]


def test_a_fabric_line_says_time_bandwidth_and_transport_per_peer():
    assert cluster.fabric_line({"rank": 0, "ip": "10.0.0.11", "seconds": 0.0042, "bus_gbps": 2.0,
                                "peers": {"1": ["NET/IB"]}}) == (
        "rank 0 10.0.0.11 0.0042 s 2.000 Gbit/s bus to rank 1 via NET/IB")
    assert cluster.fabric_line({"rank": 0, "ip": "10.0.0.11", "peers": {"1": ["NET/IB"], "2": ["NET/IB"]},
                                "gpudirect": {"1": True, "2": False}}) == (
        "rank 0 10.0.0.11 to rank 1 via NET/IB with GPUDirect RDMA, rank 2 via NET/IB without GPUDirect RDMA")


def test_the_versions_line_names_the_versions_or_says_when_they_were_proven():
    assert cluster.ray_versions_line({"ray_versions": ["2.60.0"], "python_versions": ["3.11.2"]}) == \
        "Ray 2.60.0, Python 3.11.2"
    # Membership read alone from the GCS: no versions in the result.
    assert cluster.ray_versions_line({"ray_versions": [], "python_versions": []}) == \
        "one version (proven when they started)"


def test_a_secret_every_node_holds_alike_is_not_copied_again():
    # Each node keeps it under its own data root.
    paths = ["/srv/head/secrets/ray-auth-token", "/srv/worker/secrets/ray-auth-token"]
    held = {"sha256": "ab" * 32, "mode": "0600", "owner": "0:0", "folder_mode": "0700", "folder_owner": "0:0"}
    reads = [{"secret_digests": {paths[0]: held}}, {"secret_digests": {paths[1]: dict(held)}}]
    assert cluster.kept_secret_digest(reads) == "ab" * 32
    # A node without it, another secret, a loose mode, another owner, or no read: kept and copied again.
    for changed in ({"sha256": ""}, {"sha256": "cd" * 32}, {"mode": "0644"}, {"folder_mode": "0755"},
                    {"owner": "1000:0"}, {"folder_owner": "0:1000"}):
        assert cluster.kept_secret_digest([reads[0], {"secret_digests": {paths[1]: dict(held, **changed)}}]) == ""
    assert cluster.kept_secret_digest([reads[0], {}]) == ""
    assert cluster.kept_secret_digest([{"secret_digests": {paths[0]: held, paths[1]: held}}]) == ""
    assert cluster.kept_secret_digest([]) == ""
