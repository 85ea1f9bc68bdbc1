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
    erdma_links:
      description: Per erdma device, the interface it carries (the netdev of its RoCE GIDs) and that interface's MTU.
      type: dict
      sample: {erdma_0: {netdev: eth1, mtu: 8500}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._driver_host import (
    DRIVER_MODULES,
    read_driver_host,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            modules=dict(type="list", elements="str", default=list(DRIVER_MODULES)),
            packages=dict(type="list", elements="str", default=[]),
            installed_like=dict(type="list", elements="str", default=[]),
            available=dict(type="bool", default=False),
            sysfs_path=dict(type="path", default="/sys"),
            proc_path=dict(type="path", default="/proc"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    facts = read_driver_host(module, params["sysfs_path"], params["proc_path"], modules=params["modules"],
                             packages=params["packages"], installed_like=params["installed_like"],
                             available=params["available"])
    module.exit_json(changed=False, driver_host=facts, ansible_facts=dict(llmops_driver_host=facts))


if __name__ == "__main__":
    main()
