"""The GPU check: on a machine with an NVIDIA GPU (no Docker, vLLM or Ansible needed), capture
what the collection reads from nvidia-smi, run the collection's own parsers on it, and, with
two or more GPUs and torch at hand, run two NCCL ranks forced onto the network transport and
parse their log. Everything goes to one folder, to be kept as test fixtures.

    python3 tools/gpu_check.py OUTPUT_FOLDER

Each capture is <name>.txt (stdout), <name>.stderr.txt and an entry in captures.json with
the command and its exit code; parsed.json holds what the parsers made of them, and
summary.txt one line per step. Exits 0 whenever the captures were written (a failed
nvidia-smi is itself a capture); 2 when the folder cannot be written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTILS = os.path.join(ROOT, "plugins", "module_utils")
TIMEOUT = 60


def load(name):
    """A module_utils file by path: they use the standard library only, so no Ansible needed."""
    spec = importlib.util.spec_from_file_location("llmops_" + name, os.path.join(UTILS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


accelerators, drivers, fabric = load("_accelerators"), load("_drivers"), load("_fabric")

NVIDIA_SMI_CAPTURES = {
    "query-gpu": ["--query-gpu=%s" % ",".join(accelerators.NVIDIA_SMI_QUERY_FIELDS), "--format=csv,noheader,nounits"],
    "query-health": ["--query-gpu=%s" % ",".join(accelerators.NVIDIA_SMI_HEALTH_FIELDS), "--format=csv,noheader,nounits"],
    "list": ["-L"],
    "query-full": ["-q"],
    "persistence": ["--query-gpu=persistence_mode", "--format=csv,noheader"],
    "topology": ["topo", "-m"],
    "bad-argument": ["--query-gpu=no.such.field", "--format=csv"],
    # The field names this driver knows (the health query's fields among them).
    "help-query-gpu": ["--help-query-gpu"],
}

NCCL_RANK = r"""
import os, sys, torch, torch.distributed as dist
rank = int(sys.argv[1])
torch.cuda.set_device(rank)
dist.init_process_group("nccl", init_method="tcp://127.0.0.1:%s" % sys.argv[2], rank=rank, world_size=2)
tensor = torch.ones(1 << 20, device="cuda")
dist.all_reduce(tensor)
torch.cuda.synchronize()
print("SUM", float(tensor[0]))
dist.destroy_process_group()
"""


def run(argv, env=None, timeout=TIMEOUT):
    started = time.monotonic()
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        rc, out, err = completed.returncode, completed.stdout, completed.stderr
    except subprocess.TimeoutExpired as expired:
        rc, out, err = accelerators.TIMED_OUT_RC, expired.stdout or "", "timed out after %d s" % timeout
        out = out.decode() if isinstance(out, bytes) else out
    except OSError as error:
        rc, out, err = 127, "", str(error)
    return rc, out, err, round(time.monotonic() - started, 2)


class Folder:
    def __init__(self, path):
        self.path = path
        self.captures, self.lines = {}, []
        os.makedirs(path, exist_ok=True)

    def write(self, name, text):
        with open(os.path.join(self.path, name), "w") as handle:
            handle.write(text)

    def capture(self, name, argv, env=None, timeout=TIMEOUT):
        rc, out, err, seconds = run(argv, env, timeout)
        self.write(name + ".txt", out)
        if err:
            self.write(name + ".stderr.txt", err)
        self.captures[name] = {"argv": argv, "rc": rc, "seconds": seconds}
        self.say("%s: exit %d in %.2f s, %d line(s)" % (name, rc, seconds, len(out.splitlines())))
        return rc, out, err

    def say(self, line):
        print(line, flush=True)
        self.lines.append(line)


def nccl_over_the_network(folder, gpu_count):
    """Two NCCL ranks on two GPUs, peer-to-peer and shared memory off, so their connections
    go through the network transport (what crosses nodes); their logs through parse_nccl_log."""
    if gpu_count < 2:
        folder.say("nccl: skipped, %d GPU(s): NCCL refuses two ranks on one GPU" % gpu_count)
        return {"skipped": "%d GPU(s)" % gpu_count}
    if importlib.util.find_spec("torch") is None:
        folder.say("nccl: skipped, no torch for %s" % sys.executable)
        return {"skipped": "no torch"}
    env = dict(os.environ, NCCL_DEBUG="INFO", NCCL_P2P_DISABLE="1", NCCL_SHM_DISABLE="1")
    port = "29533"
    ranks = [subprocess.Popen([sys.executable, "-c", NCCL_RANK, str(rank), port], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for rank in (0, 1)]
    parsed = {}
    for rank, process in enumerate(ranks):
        try:
            out, _err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _err = process.communicate()
        folder.write("nccl-rank%d.log" % rank, out)
        parsed[rank] = dict(fabric.parse_nccl_log(out), rc=process.returncode)
        parsed[rank]["peers"] = fabric.peer_transports(parsed[rank]["connections"])
        folder.say("nccl rank %d: exit %s, network %s, peers %s"
                   % (rank, process.returncode, parsed[rank]["networks"], parsed[rank]["peers"]))
    return parsed


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        folder = Folder(argv[1])
    except OSError as error:
        print("cannot write %s: %s" % (argv[1], error), file=sys.stderr)
        return 2
    nvidia_smi = shutil.which("nvidia-smi")
    folder.say("machine: %s, %s, Python %s, nvidia-smi %s"
               % (platform.node(), platform.platform(), platform.python_version(), nvidia_smi or "not on PATH"))
    parsed = {}
    if nvidia_smi:
        outputs = {name: folder.capture(name, [nvidia_smi] + args) for name, args in NVIDIA_SMI_CAPTURES.items()}
        rc, out, err = outputs["query-gpu"]
        try:
            gpus = accelerators.parse_nvidia_smi_gpus(out)
        except ValueError as error:
            gpus = []
            parsed["query_gpu_error"] = str(error)
        parsed["gpus"] = gpus
        parsed["lost"] = accelerators.parse_lost_gpus(out + err)
        parsed["failure"] = accelerators.nvidia_smi_failure(rc, out, err) if rc else None
        parsed["list"] = accelerators.parse_nvidia_smi_list(outputs["list"][1])
        parsed["health"] = accelerators.parse_nvidia_smi_health(outputs["query-health"][1])
        parsed["fabric"] = drivers.parse_nvidia_smi_fabric(outputs["query-full"][1])
        parsed["bad_argument"] = accelerators.nvidia_smi_failure(*outputs["bad-argument"])
    # What accelerator_facts would report from this machine's PCI bus and that answer.
    pci = accelerators.classify_pci_devices(accelerators.read_pci_devices("/sys"))
    driver = None
    if pci["nvidia_gpus"] and nvidia_smi:
        # As accelerator_facts builds it, from the same runs.
        driver = accelerators.nvidia_query_answer(*outputs["query-gpu"])
        if driver["answered"]:
            accelerators.add_nvidia_details(driver, outputs["list"][:2], outputs["query-health"][:2])
    parsed["accelerators"] = accelerators.summarize(pci, nvidia=driver)
    folder.say("accelerators: %s x %s (PCI %s), driver %s, health %s" % (
        parsed["accelerators"]["count"], parsed["accelerators"]["models"], parsed["accelerators"]["pci_count"],
        parsed["accelerators"]["driver"].get("state"), parsed["accelerators"]["health"]))
    parsed["nccl"] = nccl_over_the_network(folder, len(parsed.get("gpus") or []))
    folder.write("captures.json", json.dumps(folder.captures, indent=1, sort_keys=True) + "\n")
    folder.write("parsed.json", json.dumps(parsed, indent=1, sort_keys=True, default=str) + "\n")
    folder.write("summary.txt", "\n".join(folder.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
