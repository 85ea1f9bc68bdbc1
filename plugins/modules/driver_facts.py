#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: driver_facts
short_description: Read what the drivers phase decides from - firmware, kernel modules and driver packages
version_added: 0.2.0
description:
  - Secure Boot from the EFI variable C(SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c) (no
    EFI means off), and the IOMMU state (off, passthrough or on) from the kernel command
    line, C(/sys/class/iommu) and the IOMMU groups' types.
  - For each kernel module named in O(modules) - loaded or not, its version and parameters from
    sysfs, and whether C(modinfo) finds it for the running kernel.
  - For each package named in O(packages) - the installed version and whether it is held
    (apt-mark hold); with O(available), the versions the configured repositories offer
    (apt-cache madison).
  - Alibaba eRDMA devices, found by their driver under C(/sys/class/infiniband), whatever their name.
  - Sets the fact C(llmops_driver_host). Never changes the node.
author:
  - llmops.inference maintainers (@llmops)
options:
  modules:
    description: Kernel modules to report; by default every one the driver roles decide from.
    type: list
    elements: str
    default: [nvidia, nouveau, vastai_pci, erdma]
  packages:
    description: Packages to report the installed version and hold state of.
    type: list
    elements: str
    default: []
  installed_like:
    description:
      - Also report every installed package whose name matches one of these shell patterns
        (for example C(*nvidia*)), so the driver's components can be held together.
    type: list
    elements: str
    default: []
  available:
    description: Also report the versions the repositories offer for O(packages).
    type: bool
    default: false
  sysfs_path:
    description: Root of sysfs. Change it only to inspect a mounted image or a simulation.
    type: path
    default: /sys
  proc_path:
    description: Root of procfs. Change it only to inspect a mounted image or a simulation.
    type: path
    default: /proc
extends_documentation_fragment:
  - llmops.inference.read_only
notes:
  - Runs on the managed node. Reads packages with apt and dpkg (Debian and Ubuntu, the only
    family the collection deploys to); elsewhere it reports no packages.
"""

EXAMPLES = r"""
- name: Read Secure Boot, IOMMU, the NVIDIA modules and the driver packages
  llmops.inference.driver_facts:
    modules: [nvidia, nouveau]
    packages: [nvidia-open-580, nvidia-fabricmanager-580]
    available: true
"""

RETURN = r"""
driver_host:
  description: What the node says. Also set as the fact C(llmops_driver_host).
  returned: always
  type: dict
  contains:
    kernel_release:
      description: The running kernel.
      type: str
      sample: 6.1.0-28-amd64
    package_manager:
      description: V(apt), or V(unknown) on a node without dpkg.
      type: str
    secure_boot:
      description:
        - C(state) (V(enabled), V(disabled), or V(unknown) when efivarfs is not mounted and
          mokutil gave no answer) and C(evidence).
      type: dict
      sample: {state: disabled, evidence: "no EFI firmware (legacy boot)"}
    iommu:
      description: C(state) (V(off), V(passthrough) or V(on)) and C(evidence).
      type: dict
    modules:
      description: Per module - C(loaded), C(version), C(parameters), C(available) (modinfo found it).
      type: dict
      sample: {nvidia: {loaded: true, version: "580.95.05", parameters: {}, available: true}}
    packages:
      description: Per installed package asked for - C(version) and C(held). Absent packages are left out.
      type: dict
      sample: {nvidia-open-580: {version: "580.95.05-1", held: true}}
    available:
      description: Per package asked for - the versions the repositories offer (with O(available)).
      type: dict
      sample: {nvidia-open-580: ["580.95.05-1", "580.82.07-1"]}
    erdma_devices:
      description: RDMA devices whose driver is erdma.
      type: list
      elements: str
      sample: [erdma_0]
"""

import glob
import os
import platform

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._drivers import (
    SECURE_BOOT_EFIVAR,
    iommu_state,
    parse_apt_madison,
    parse_dpkg_query,
    secure_boot_state,
)

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def read_text(path, default=None):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError, UnicodeDecodeError):
        return default


def secure_boot(module, sysfs_path):
    efi = os.path.join(sysfs_path, "firmware", "efi")
    if not os.path.isdir(efi):
        return {"state": "disabled", "evidence": "no EFI firmware (legacy boot)"}
    path = os.path.join(efi, "efivars", SECURE_BOOT_EFIVAR)
    try:
        with open(path, "rb") as handle:
            value = handle.read()
    except (IOError, OSError):
        if os.listdir(os.path.join(efi, "efivars")) if os.path.isdir(os.path.join(efi, "efivars")) else False:
            return {"state": "disabled", "evidence": "EFI boot without a SecureBoot variable"}
        # efivarfs not mounted: ask mokutil, which reads the firmware another way.
        mokutil = module.get_bin_path("mokutil")
        if mokutil:
            rc, out, _err = module.run_command([mokutil, "--sb-state"], environ_update=C_LOCALE)
            if rc == 0 and "enabled" in out.lower():
                return {"state": "enabled", "evidence": "mokutil --sb-state: %s" % out.strip()}
            if rc == 0 and "disabled" in out.lower():
                return {"state": "disabled", "evidence": "mokutil --sb-state: %s" % out.strip()}
        return {"state": "unknown", "evidence": "EFI firmware, but %s/efivars is empty and mokutil gave no answer" % efi}
    state = secure_boot_state(value)
    return {"state": state, "evidence": "%s = %s" % (path, "1" if state == "enabled" else "0")}


def iommu(sysfs_path, proc_path):
    cmdline = read_text(os.path.join(proc_path, "cmdline"), "")
    devices = sorted(os.path.basename(path) for path in glob.glob(os.path.join(sysfs_path, "class", "iommu", "*")))
    types = [read_text(path, "") for path in glob.glob(os.path.join(sysfs_path, "kernel", "iommu_groups", "*", "type"))]
    state, evidence = iommu_state(cmdline, devices, types)
    return {"state": state, "evidence": evidence}


def kernel_module(module, sysfs_path, name):
    folder = os.path.join(sysfs_path, "module", name)
    parameters = {}
    for path in sorted(glob.glob(os.path.join(folder, "parameters", "*"))):
        parameters[os.path.basename(path)] = read_text(path)
    modinfo = module.get_bin_path("modinfo")
    available = False
    if modinfo:
        rc, _out, _err = module.run_command([modinfo, "-F", "filename", name], environ_update=C_LOCALE)
        available = rc == 0
    return {
        "loaded": os.path.isdir(folder),
        "version": read_text(os.path.join(folder, "version")),
        "parameters": parameters,
        "available": available,
    }


def erdma_devices(sysfs_path):
    names = []
    for device in sorted(glob.glob(os.path.join(sysfs_path, "class", "infiniband", "*"))):
        driver = os.path.join(device, "device", "driver")
        if os.path.basename(os.path.realpath(driver)) == "erdma":
            names.append(os.path.basename(device))
    return names


def fail(module, what, rc, out, err):
    module.fail_json(msg="%s failed (rc %s): %s" % (what, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)


def apt_packages(module, names, patterns, available):
    dpkg_query = module.get_bin_path("dpkg-query", required=True)
    installed = {}
    if names or patterns:
        # rc 1 only says some names are unknown (not installed).
        rc, out, err = module.run_command([dpkg_query, "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n"] + names + patterns,
                                          environ_update=C_LOCALE)
        if rc not in (0, 1):
            fail(module, "dpkg-query", rc, out, err)
        installed = parse_dpkg_query(out)
    offered = {}
    if available and names:
        apt_cache = module.get_bin_path("apt-cache", required=True)
        rc, out, err = module.run_command([apt_cache, "madison"] + names, environ_update=C_LOCALE)
        if rc != 0:
            fail(module, "apt-cache madison", rc, out, err)
        offered = parse_apt_madison(out)
    return installed, offered


def main():
    module = AnsibleModule(
        argument_spec=dict(
            modules=dict(type="list", elements="str", default=["nvidia", "nouveau", "vastai_pci", "erdma"]),
            packages=dict(type="list", elements="str", default=[]),
            installed_like=dict(type="list", elements="str", default=[]),
            available=dict(type="bool", default=False),
            sysfs_path=dict(type="path", default="/sys"),
            proc_path=dict(type="path", default="/proc"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    manager = "apt" if module.get_bin_path("dpkg-query") else "unknown"
    installed, offered = {}, {}
    if manager == "apt":
        installed, offered = apt_packages(module, params["packages"], params["installed_like"], params["available"])
    facts = {
        "kernel_release": platform.release(),
        "package_manager": manager,
        "secure_boot": secure_boot(module, params["sysfs_path"]),
        "iommu": iommu(params["sysfs_path"], params["proc_path"]),
        "modules": {name: kernel_module(module, params["sysfs_path"], name) for name in params["modules"]},
        "packages": installed,
        "available": {name: offered.get(name, []) for name in params["packages"]} if params["available"] else {},
        "erdma_devices": erdma_devices(params["sysfs_path"]),
    }
    module.exit_json(changed=False, driver_host=facts, ansible_facts=dict(llmops_driver_host=facts))


if __name__ == "__main__":
    main()
