# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric check: a real all-reduce across every node of the Ray cluster, run inside the
Ray node containers before vLLM starts, and pure functions over what it reports (NCCL's own
log tells which transport each connection used)."""

from __future__ import annotations

import json
import re

REPORT_MARKER = "LLMOPS_FABRIC "

# Runs with the Ray container's interpreter (docker exec). One actor per alive node, pinned
# there; rank 0 on the head opens the rendezvous on its own address. Each rank all-reduces a
# tensor of ones (the sum must equal the world size), then times a second all-reduce. With
# NCCL, NCCL_DEBUG=INFO goes to a file per rank, returned whole for the parser.
FABRIC_SCRIPT = r'''
import json, logging, sys
options = json.loads(sys.argv[1])
report = {"ranks": []}
try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    ray.init(address="auto", logging_level=logging.ERROR, log_to_driver=False,
             include_dashboard=False, configure_logging=False)
except Exception as error:
    print("LLMOPS_FABRIC " + json.dumps({"error": "cannot join the Ray cluster: %s" % error}))
    sys.exit(0)


@ray.remote(num_cpus=0)
class Rank:
    def free_port(self):
        import os, socket
        address = os.environ.get("VLLM_HOST_IP") or ray.util.get_node_ip_address()
        with socket.socket() as probe:
            probe.bind((address, 0))
            return address, probe.getsockname()[1]

    def run(self, backend, master, rank, world, size, timeout):
        import datetime, glob, os, socket, time
        log_prefix = "/tmp/llmops-fabric-nccl-%d" % rank
        for path in glob.glob(log_prefix + "*"):
            os.remove(path)
        if backend == "nccl":
            os.environ.update(NCCL_DEBUG="INFO", NCCL_DEBUG_SUBSYS="INIT,NET,GRAPH", NCCL_DEBUG_FILE=log_prefix + ".%p")
        result = {"rank": rank, "ip": os.environ.get("VLLM_HOST_IP") or ray.util.get_node_ip_address(),
                  "hostname": socket.gethostname(), "backend": backend}
        try:
            import torch
            import torch.distributed as dist
            dist.init_process_group(backend, init_method="tcp://%s:%d" % tuple(master), rank=rank,
                                    world_size=world, timeout=datetime.timedelta(seconds=timeout))
            device = torch.device("cuda", 0) if backend == "nccl" else torch.device("cpu")
            ones = torch.ones(max(size // 4, 1), dtype=torch.float32, device=device)
            dist.all_reduce(ones)
            result["sum"] = float(ones[0].item())
            timed = torch.ones(max(size // 4, 1), dtype=torch.float32, device=device)
            if backend == "nccl":
                torch.cuda.synchronize()
            dist.barrier()
            started = time.time()
            dist.all_reduce(timed)
            if backend == "nccl":
                torch.cuda.synchronize()
            result["seconds"] = time.time() - started
            dist.destroy_process_group()
        except Exception as error:
            result["error"] = "%s: %s" % (type(error).__name__, str(error).splitlines()[0][:300] if str(error) else "")
        logs = []
        for path in sorted(glob.glob(log_prefix + "*")):
            with open(path, errors="replace") as handle:
                logs.append(handle.read()[-200000:])
        result["nccl_log"] = "\n".join(logs)
        return result


nodes = [node for node in ray.nodes() if node.get("Alive")]
nodes.sort(key=lambda node: ("node:__internal_head__" not in (node.get("Resources") or {}), node["NodeManagerAddress"]))
report["nodes"] = [node["NodeManagerAddress"] for node in nodes]
if options["backend"] == "nccl" and ray.available_resources().get("GPU", 0) < len(nodes):
    # A job holds the GPUs (vLLM serving through Ray holds all of them): no rank could be placed.
    report["busy"] = "%s of %d GPU(s) free in the Ray cluster, one per node needed" % (
        ray.available_resources().get("GPU", 0), len(nodes))
    print("LLMOPS_FABRIC " + json.dumps(report))
    sys.exit(0)
resources = {"num_gpus": 1} if options["backend"] == "nccl" else {}
ranks = [Rank.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False),
                      **resources).remote() for node in nodes]
try:
    master = ray.get(ranks[0].free_port.remote(), timeout=options["timeout"])
    pending = [rank.run.remote(options["backend"], master, index, len(ranks), options["bytes"], options["timeout"])
               for index, rank in enumerate(ranks)]
    report["ranks"] = ray.get(pending, timeout=options["timeout"] + 30)
except Exception as error:
    report["error"] = "the collective did not finish: %s" % str(error).splitlines()[0][:300]
print("LLMOPS_FABRIC " + json.dumps(report))
'''

# The net plugin NCCL chose: "Using network IB" / "Using network Socket" / "Using network
# IBext_v8" (2.7 and later), "Using internal Network Socket" (2.3 and earlier).
NETWORK_LINE = re.compile(r"NCCL INFO Using (?:internal )?[Nn]etwork (\w+)")
# One connection of a channel, in the forms NCCL printed over the years:
# "Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/0/GDRDMA" (2.12+),
# "Channel 01 : 2[c7000] -> 0[87000] [receive] via NET/IB/5/GDRDMA" (2.6-2.11),
# "Ring 00 : 43 -> 44 [receive] via NET/Socket/0" (2.5 and earlier). Plan lines such as
# "Ring 00 : 0 -> 1 -> 0" have no "via" and are not connections.
CHANNEL_LINE = re.compile(
    r"NCCL INFO (?:Channel|Ring) (?P<channel>\d+)(?:/\d+)? ?: (?P<src>\d+)(?:\[[^\]]*\])? -> (?P<dst>\d+)(?:\[[^\]]*\])?"
    r"(?: \[(?P<direction>send|receive)\])? via (?P<via>\S+)")
WARN_LINE = re.compile(r"NCCL WARN .*")


def transport_of(via):
    """The transport of a channel's `via` field: NET/IB, NET/Socket, P2P, SHM, ..."""
    parts = re.split(r"[/(]", via)
    if parts[0] == "NET" and len(parts) > 1:
        return "NET/" + parts[1]
    return parts[0]


def parse_nccl_log(text):
    """What one rank's NCCL_DEBUG=INFO log says: the network it chose, every connection
    (channel, from rank, to rank, direction, transport), and its warnings."""
    networks, connections, warnings = [], [], []
    for line in (text or "").splitlines():
        network = NETWORK_LINE.search(line)
        if network and network.group(1) and network.group(1) not in networks:
            networks.append(network.group(1))
        channel = CHANNEL_LINE.search(line)
        if channel:
            connections.append(dict(
                channel=int(channel.group("channel")), src=int(channel.group("src")), dst=int(channel.group("dst")),
                direction=channel.group("direction") or "", via=channel.group("via"),
                transport=transport_of(channel.group("via"))))
        warning = WARN_LINE.search(line)
        if warning:
            warnings.append(warning.group(0))
    return dict(networks=networks, connections=connections, warnings=warnings)


def peer_transports(connections):
    """{peer rank: sorted transports} over the connections that leave this node (NET/*)."""
    peers = {}
    for connection in connections:
        if connection["transport"].startswith("NET/"):
            peer = connection["dst"] if connection["direction"] != "receive" else connection["src"]
            peers.setdefault(peer, set()).add(connection["transport"])
    return {peer: sorted(transports) for peer, transports in sorted(peers.items())}


def peer_gpudirect(connections):
    """{peer rank: whether every RDMA connection to it uses GPUDirect RDMA} over the NET/IB
    connections (NCCL ends their `via` with /GDRDMA when the NIC reads and writes GPU memory
    itself; without it the data is staged through host memory)."""
    peers = {}
    for connection in connections:
        if connection["transport"] == "NET/IB":
            peer = connection["dst"] if connection["direction"] != "receive" else connection["src"]
            peers[peer] = peers.get(peer, True) and connection["via"].endswith("/GDRDMA")
    return dict(sorted(peers.items()))


def parse_report(stdout):
    """The fabric script's JSON line among whatever else Ray printed."""
    for line in reversed((stdout or "").splitlines()):
        if line.startswith(REPORT_MARKER):
            return json.loads(line[len(REPORT_MARKER):])
    raise ValueError("the fabric check printed no report: %s" % (stdout or "")[-500:])


def summarize(report, expected_nodes, rdma_expected, size):
    """Per rank: address, result, seconds, bus bandwidth and (NCCL) transport per peer; and
    the problems: a node missing, a rank that failed, a wrong sum, or sockets where RDMA NICs
    exist; and the notices: RDMA peers reached without GPUDirect RDMA (it works, slower)."""
    problems = []
    if report.get("error"):
        problems.append(report["error"])
    ranks = report.get("ranks") or []
    world = len(ranks)
    if world < int(expected_nodes):
        problems.append("the collective ran on %d node(s) (%s), expected %d"
                        % (world, ", ".join(report.get("nodes") or []) or "none", int(expected_nodes)))
    summary, notices = [], []
    for rank in ranks:
        entry = dict(rank=rank["rank"], ip=rank["ip"], hostname=rank.get("hostname"), backend=rank["backend"])
        if rank.get("error"):
            problems.append("rank %d on %s failed: %s" % (rank["rank"], rank["ip"], rank["error"]))
        elif rank.get("sum") != float(world):
            problems.append("rank %d on %s summed %s, expected %d" % (rank["rank"], rank["ip"], rank.get("sum"), world))
        seconds = rank.get("seconds")
        entry["seconds"] = round(seconds, 6) if seconds is not None else None
        # An all-reduce moves 2 (n - 1) / n of the buffer through each rank's link.
        if seconds and world > 1:
            entry["bus_gbps"] = round(2.0 * (world - 1) / world * int(size) * 8 / seconds / 1e9, 3)
        if rank["backend"] == "nccl":
            parsed = parse_nccl_log(rank.get("nccl_log"))
            entry["networks"] = parsed["networks"]
            entry["peers"] = {str(peer): transports for peer, transports in peer_transports(parsed["connections"]).items()}
            entry["warnings"] = parsed["warnings"][-5:]
            entry["gpudirect"] = {str(peer): used for peer, used in peer_gpudirect(parsed["connections"]).items()}
            staged = [peer for peer, used in entry["gpudirect"].items() if not used]
            if staged:
                notices.append(
                    "rank %d on %s reaches rank(s) %s over RDMA without GPUDirect RDMA (no /GDRDMA in NCCL's "
                    "channels): the data is staged through host memory. For GPUDirect: the nvidia-peermem module "
                    "loaded on the node, and NCCL_NET_GDR_LEVEL covering the GPU-NIC distance (nvidia-smi topo -m)."
                    % (rank["rank"], rank["ip"], ", ".join(staged)))
            sockets = [peer for peer, transports in entry["peers"].items() if "NET/Socket" in transports]
            if rdma_expected and (sockets or "Socket" in parsed["networks"]):
                problems.append(
                    "rank %d on %s reached rank(s) %s over NET/Socket although the node has RDMA NICs: NCCL fell back "
                    "to TCP. Fix: check the eRDMA/IB driver (ibv_devinfo PORT_ACTIVE), the /dev/infiniband devices in "
                    "the container and NCCL_IB_HCA." % (rank["rank"], rank["ip"], ", ".join(sockets) or "all"))
        summary.append(entry)
    return dict(ranks=summary, world_size=world, problems=problems, notices=notices)
