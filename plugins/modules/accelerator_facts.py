#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: accelerator_facts
short_description: Discover a node's accelerators (NVIDIA, VastAI), NVSwitch and eRDMA NICs
version_added: 0.1.0
description:
  - Finds accelerators from PCI sysfs, so it works before any driver is installed.
    NVIDIA GPUs (vendor 0x10de, VGA/3D class), NVSwitch bridges, VastAI AI dies (Vastai
    Technologies, vendor 0x1ec6, device 0x0100, card model from the subsystem id) and
    Alibaba Cloud eRDMA NICs (1ded:107f).
  - When a driver is present it asks it. NVIDIA - C(nvidia-smi --query-gpu) in the C locale
    and C(nvidia-smi -L) for MIG devices. VastAI - the C(vastai_pci) kernel module,
    C(/dev/vacc*) nodes, C(/dev/vastai*_version) and, when on PATH or under C(/opt/va*), C(vasmi).
  - A missing tool or a broken driver (for example nvidia-smi exit code 9) is reported in
    RV(accelerators.driver), never raised as a traceback. A driver that is missing, not
    loaded, awaiting a reboot or otherwise broken counts the GPUs on the PCI bus (the drivers
    phase may repair it); a GPU that fell off the bus (exit code 15) or an nvidia-smi that
    timed out counts only the GPUs that answered and is named in RV(accelerators.health).
  - Reads each GPU's MIG mode and pending row remaps and retired pages
    (C(mig.mode.current), C(remapped_rows.pending), C(retired_pages.pending)) into
    RV(accelerators.health).
  - A node with no accelerator is reported as a CPU-only node (vendor C(cpu)).
  - Sets the fact C(llmops_accelerators). Never changes the node.
author:
  - llmops.inference maintainers (@llmops)
options:
  min_count:
    description:
      - Fail unless at least this many accelerators are usable. The usable count is what
        the driver sees when it answers, otherwise what PCI shows.
    type: int
    default: 0
  vendor:
    description:
      - Fail unless the node's accelerators are of this vendor. V(auto) accepts any.
    type: str
    choices: [auto, nvidia, vastai, cpu]
    default: auto
  require_driver:
    description:
      - Fail unless the accelerators' driver answered.
    type: bool
    default: false
  sysfs_path:
    description:
      - Root of sysfs. Change it only to inspect a mounted image or a simulation.
    type: path
    default: /sys
  dev_path:
    description:
      - Root of device nodes. Change it only to inspect a mounted image or a simulation.
    type: path
    default: /dev
  driver_host:
    description:
      - Also read what M(llmops.inference.driver_facts) reads with its defaults (Secure Boot,
        the IOMMU, the driver roles' kernel modules, eRDMA devices) and set the fact
        C(llmops_driver_host), so a node is read once where both are needed.
    type: bool
    default: false
  proc_path:
    description:
      - Root of procfs, read with O(driver_host). Change it only to inspect a simulation.
    type: path
    default: /proc
  tool_timeout:
    description:
      - Seconds each C(nvidia-smi) or C(vasmi) call may take (under coreutils' C(timeout)); a
        wedged GPU can hang it. A call that runs out reports driver state C(timeout). V(0) waits
        forever.
    type: int
    default: 60
extends_documentation_fragment:
  - llmops.inference.read_only
notes:
  - Runs on the managed node. Needs no driver to count devices.
"""

EXAMPLES = r"""
- name: Discover accelerators
  llmops.inference.accelerator_facts:

- name: Require eight NVIDIA GPUs with a working driver
  llmops.inference.accelerator_facts:
    vendor: nvidia
    min_count: 8
    require_driver: true

- name: Tensor parallel size from the facts
  ansible.builtin.set_fact:
    tensor_parallel_size: "{{ ansible_facts.llmops_accelerators.count }}"
"""

RETURN = r"""
accelerators:
  description: What the node has. Also set as the fact C(llmops_accelerators).
  returned: always
  type: dict
  contains:
    vendor:
      description: V(nvidia), V(vastai) or V(cpu) (no accelerator).
      type: str
      sample: nvidia
    count:
      description:
        - Usable accelerators - the driver's count when it answers, the GPUs that answered
          when one fell off the bus or nvidia-smi timed out, else the PCI count.
      type: int
      sample: 8
    pci_count:
      description: Accelerators seen on the PCI bus.
      type: int
      sample: 8
    pci_device_ids:
      description: The NVIDIA GPUs' PCI device ids (their generation decides the kernel module type).
      type: list
      elements: str
      sample: ["0x2330"]
    driver_count:
      description: Accelerators the driver reports; null when it did not answer.
      type: int
      sample: 8
    models:
      description: Distinct model names (driver names, or VastAI card models from PCI).
      type: list
      elements: str
      sample: [NVIDIA H100 80GB HBM3]
    memory_total_mib:
      description: Smallest per-device memory in MiB, when known.
      type: int
      sample: 81559
    devices:
      description: Per device - index, name, uuid, memory, bus id (NVIDIA); device node, card model (VastAI).
      type: list
      elements: dict
    driver:
      description:
        - Driver state - V(ok), V(not_installed), V(driver_unreachable),
          V(driver_library_mismatch), V(gpu_lost), V(timeout), V(error), V(unparsable), or
          V(absent) on CPU-only nodes.
        - Also C(answered), C(version), C(message) (with the exit code's meaning) and, for
          NVIDIA, C(mig_device_count), C(rc) and C(lost) (the GPUs nvidia-smi could not reach).
      type: dict
      sample: {state: ok, answered: true, version: "550.54.15", mig_device_count: 0}
    health:
      description:
        - C(problems) - why the node's GPUs are not fit to plan on (a lost GPU, a timeout),
          with the evidence; C(mig) - GPUs with MIG mode enabled; C(warnings) - GPUs with
          row remaps or retired pages pending. Empty lists on healthy and non-NVIDIA nodes.
      type: dict
      sample: {problems: [], mig: [], warnings: []}
    nvswitch_count:
      description: NVSwitch bridges on the PCI bus (they need nvidia-fabricmanager).
      type: int
      sample: 4
    erdma_nic_count:
      description: Alibaba Cloud eRDMA NICs on the PCI bus.
      type: int
      sample: 1
    cpu_only:
      description: True when the node has no accelerator.
      type: bool
      sample: false
    vcpus:
      description:
        - The logical CPUs the node has (as C(processor_vcpus) counts them); the CPU profile
          shares them between instances. Read here so preflight needs no hardware facts.
      type: int
      sample: 96
driver_host:
  description:
    - With O(driver_host), what M(llmops.inference.driver_facts) returns as RV(driver_host)
      (also set as the fact C(llmops_driver_host)).
  returned: when O(driver_host) is true
  type: dict
"""

import glob
import os
import platform
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._accelerators import (
    NVIDIA_SMI_HEALTH_FIELDS,
    NVIDIA_SMI_QUERY_FIELDS,
    add_nvidia_details,
    classify_pci_devices,
    nvidia_query_answer,
    parse_vasmi_memory,
    parse_vastai_version,
    read_pci_devices,
    summarize,
)
from ansible_collections.llmops.inference.plugins.module_utils._driver_host import read_driver_host

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def run_bounded(module, argv, seconds):
    """run_command under coreutils' timeout (exit 124 when it ran out of time): a wedged GPU
    can hang nvidia-smi, and with it the play."""
    timeout = module.get_bin_path("timeout") if seconds > 0 else None
    bounded = [timeout, "--kill-after=5", str(seconds)] + argv if timeout else argv
    return module.run_command(bounded, environ_update=C_LOCALE)


def query_nvidia(module, seconds):
    nvidia_smi = module.get_bin_path("nvidia-smi")
    if not nvidia_smi:
        return {"state": "not_installed", "answered": False, "devices": [], "message": "nvidia-smi is not on PATH"}
    query = [nvidia_smi, "--query-gpu=%s" % ",".join(NVIDIA_SMI_QUERY_FIELDS), "--format=csv,noheader,nounits"]
    answer = nvidia_query_answer(*run_bounded(module, query, seconds))
    if not answer["answered"]:
        return answer
    health_query = [nvidia_smi, "--query-gpu=%s" % ",".join(NVIDIA_SMI_HEALTH_FIELDS), "--format=csv,noheader,nounits"]
    return add_nvidia_details(answer, run_bounded(module, [nvidia_smi, "-L"], seconds)[:2],
                              run_bounded(module, health_query, seconds)[:2])


def _node_index(path):
    match = re.search(r"(\d+)$", path)
    return int(match.group(1)) if match else -1


def query_vastai(module, sysfs_path, dev_path, dies, seconds):
    module_loaded = os.path.isdir(os.path.join(sysfs_path, "module", "vastai_pci"))
    nodes = sorted(glob.glob(os.path.join(dev_path, "vacc[0-9]*")), key=_node_index)
    version = {}
    for version_file in sorted(glob.glob(os.path.join(dev_path, "vastai*_version"))):
        try:
            with open(version_file) as handle:
                version = parse_vastai_version(handle.read())
        except (IOError, OSError):
            continue
        if version:
            break
    if not module_loaded and not nodes:
        return {"state": "not_installed", "answered": False, "devices": [], "message": "vastai_pci is not loaded"}
    if not nodes:
        return {"state": "error", "answered": False, "devices": [], "message": "vastai_pci is loaded but no /dev/vacc* node exists"}
    models = sorted({die["card_model"] for die in dies if die["card_model"]})
    memory = []
    vasmi = module.get_bin_path("vasmi", opt_dirs=sorted(glob.glob("/opt/va*/bin") + glob.glob("/opt/va*/*/bin")))
    if vasmi:
        rc, stdout, _stderr = run_bounded(module, [vasmi, "summary", "--display-format=json"], seconds)
        memory = parse_vasmi_memory(stdout) if rc == 0 else []
    devices = []
    for position, node in enumerate(nodes):
        device = {"index": _node_index(node), "device_node": node, "card_model": models[0] if len(models) == 1 else None}
        if position < len(memory):
            device["memory_total_mib"] = memory[position]["memory_total_mib"]
        devices.append(device)
    return {
        "state": "ok",
        "answered": True,
        "devices": devices,
        "version": version.get("driver"),
        "firmware_version": version.get("firmware"),
        "kernel_module_loaded": module_loaded,
        "message": "",
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            min_count=dict(type="int", default=0),
            vendor=dict(type="str", default="auto", choices=["auto", "nvidia", "vastai", "cpu"]),
            require_driver=dict(type="bool", default=False),
            sysfs_path=dict(type="path", default="/sys"),
            dev_path=dict(type="path", default="/dev"),
            driver_host=dict(type="bool", default=False),
            proc_path=dict(type="path", default="/proc"),
            tool_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = module.params
    pci = classify_pci_devices(read_pci_devices(params["sysfs_path"]))
    nvidia = query_nvidia(module, params["tool_timeout"]) if pci["nvidia_gpus"] else None
    vastai = query_vastai(module, params["sysfs_path"], params["dev_path"], pci["vastai_dies"], params["tool_timeout"]) if pci["vastai_dies"] else None
    facts = summarize(pci, nvidia=nvidia, vastai=vastai)
    facts["vcpus"] = os.cpu_count() or 1
    result = dict(changed=False, accelerators=facts, ansible_facts=dict(llmops_accelerators=facts))
    if params["driver_host"]:
        driver_host = read_driver_host(module, params["sysfs_path"], params["proc_path"])
        result.update(driver_host=driver_host)
        result["ansible_facts"]["llmops_driver_host"] = driver_host

    host = platform.node()
    problems = []
    if params["vendor"] != "auto" and facts["vendor"] != params["vendor"]:
        problems.append("vendor is %s, wanted %s" % (facts["vendor"], params["vendor"]))
    if facts["count"] < params["min_count"]:
        problems.append(
            "found %d %s accelerator(s) (PCI %d, driver %s), wanted at least %d"
            % (facts["count"], facts["vendor"], facts["pci_count"], facts["driver_count"], params["min_count"])
        )
    if params["require_driver"] and not facts["driver"]["answered"]:
        problems.append(
            "the %s driver did not answer (state %s): %s"
            % (facts["vendor"], facts["driver"]["state"], facts["driver"].get("message") or "no detail")
        )
    if problems:
        module.fail_json(msg="host %s: %s" % (host, "; ".join(problems)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
