# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the cluster phase: what is wrong with a Ray cluster as ray_cluster_info saw it."""

from __future__ import annotations


def cluster_problems(info, expected, needed_accelerators=0, resource="GPU"):
    """One message per problem of the Ray cluster, naming hosts and addresses.

    info: the ray_cluster_info result; expected: {host: private address} of every node of
    inference_cluster; needed_accelerators: tensor x pipeline parallel of a Ray-backend plan
    (0: no check); resource: the Ray resource those accelerators are (GPU on NVIDIA).
    """
    if "alive_count" not in info:
        return ["The Ray cluster could not be read: %s. Look at the head's Ray container log "
                "(docker logs <llmops_ray_container_name>)." % info.get("msg", "no answer")]
    problems = []
    alive = {node["ip"]: node for node in info.get("nodes") or []}
    missing = {host: address for host, address in sorted(expected.items()) if address not in alive}
    if missing:
        lost = [node["ip"] for node in info.get("lost_nodes") or []]
        problems.append(
            "Ray cluster: %d of %d node(s) alive; missing: %s%s. Fix: look at the Ray container's log on each missing "
            "node (docker logs), that it reaches the head on the first port of ray_cluster_ports, and the token file."
            % (info["alive_count"], len(expected),
               ", ".join("%s (%s)" % (host, address) for host, address in missing.items()),
               "; lost (were alive): %s" % ", ".join(lost) if lost else ""))
    if info.get("version_mismatch"):
        by_version = ["%s: Ray %s, Python %s" % (node["ip"], node.get("ray_version"), node.get("python_version"))
                      for node in info.get("nodes") or []]
        problems.append(
            "Ray nodes run different versions (%s). Fix: run the same image on every node (vllm_serve_image or "
            "vllm_serve_images, pinned by digest)." % "; ".join(by_version))
    have = float((info.get("resources_total") or {}).get(resource, 0))
    if needed_accelerators and have < float(needed_accelerators):
        problems.append(
            "Ray sees %g %s across the alive nodes but the serving plan needs %d (tensor x pipeline parallel). Fix: "
            "check each node's driver (--tags verify) or lower vllm_serve_tensor_parallel_size / "
            "vllm_serve_pipeline_parallel_size." % (have, resource, int(needed_accelerators)))
    return problems


def fabric_line(rank):
    """One rank of the fabric check, as the summary prints it."""
    parts = ["rank %d %s" % (rank["rank"], rank["ip"])]
    if rank.get("seconds") is not None:
        parts.append("%.4f s" % rank["seconds"])
    if rank.get("bus_gbps") is not None:
        parts.append("%.3f Gbit/s bus" % rank["bus_gbps"])
    if rank.get("peers"):
        gpudirect = rank.get("gpudirect") or {}
        parts.append("to " + ", ".join(
            "rank %s via %s%s" % (peer, "+".join(via), {True: " with GPUDirect RDMA", False: " without GPUDirect RDMA"}.get(
                gpudirect.get(peer), "")) for peer, via in sorted(rank["peers"].items())))
    return " ".join(parts)


def ray_versions_line(members):
    """The Ray and Python versions of a ray_cluster_info result, as the summaries print them.

    A read of membership alone (no Ray node started in the run) has no versions: they were
    proven by the run that started the nodes.
    """
    if not members.get("ray_versions"):
        return "one version (proven when they started)"
    return "Ray %s, Python %s" % (", ".join(members["ray_versions"]), ", ".join(members.get("python_versions") or []))


def kept_secret_digest(reads):
    """The digest of a secret when every node already holds it, the same everywhere.

    reads: the serving_info result of each node, each asked for that one secret in its
    secret_files (under the node's own data root, so the path may differ per node). Returns
    the digest when each node's copy is non-empty, 0600 in a 0700 folder, both owned by root
    (as config_files leaves them), and all agree; '' otherwise, and the secret is then kept on
    the head and copied again (which also puts modes and owners back).
    """
    found = []
    for read in reads:
        asked = list((read.get("secret_digests") or {}).values())
        found.append(asked[0] if len(asked) == 1 else {})
    digests = set(item.get("sha256", "") for item in found)
    modes_right = all(item.get("mode") == "0600" and item.get("folder_mode") == "0700"
                      and item.get("owner") == "0:0" and item.get("folder_owner") == "0:0" for item in found)
    return digests.pop() if found and modes_right and len(digests) == 1 and "" not in digests else ""


class FilterModule:
    def filters(self):
        return {"cluster_problems": cluster_problems, "fabric_line": fabric_line, "ray_versions_line": ray_versions_line,
                "kept_secret_digest": kept_secret_digest}
