# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading what the drivers phase decides from on a node: Secure Boot, the IOMMU, kernel
modules, eRDMA devices and driver packages. Runs inside a module (it needs run_command);
driver_facts returns it, and accelerator_facts returns it too, so preflight reads a node once.
"""

from __future__ import annotations

import glob
import os
import platform

from ansible_collections.llmops.inference.plugins.module_utils._drivers import (
    SECURE_BOOT_EFIVAR,
    iommu_state,
    parse_apt_madison,
    parse_dpkg_query,
    secure_boot_state,
)

# The kernel modules the driver roles decide from.
DRIVER_MODULES = ["nvidia", "nouveau", "vastai_pci", "erdma"]

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


def erdma_links(sysfs_path):
    """{device: {netdev, mtu}}: the interface each erdma device carries (the netdev of its
    RoCE GIDs) and that interface's MTU; netdev '' and mtu None where sysfs does not say."""
    links = {}
    for name in erdma_devices(sysfs_path):
        pattern = os.path.join(sysfs_path, "class", "infiniband", name, "ports", "*", "gid_attrs", "ndevs", "*")
        netdev = next((text for text in (read_text(path, "") for path in sorted(glob.glob(pattern))) if text), "")
        mtu = read_text(os.path.join(sysfs_path, "class", "net", netdev, "mtu"), "") if netdev else ""
        links[name] = {"netdev": netdev, "mtu": int(mtu) if mtu.isdigit() else None}
    return links


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


def read_driver_host(module, sysfs_path, proc_path, modules=None, packages=(), installed_like=(), available=False):
    """What driver_facts documents as driver_host (and sets as llmops_driver_host)."""
    manager = "apt" if module.get_bin_path("dpkg-query") else "unknown"
    installed, offered = {}, {}
    if manager == "apt":
        installed, offered = apt_packages(module, list(packages), list(installed_like), available)
    return {
        "kernel_release": platform.release(),
        "package_manager": manager,
        "secure_boot": secure_boot(module, sysfs_path),
        "iommu": iommu(sysfs_path, proc_path),
        "modules": {name: kernel_module(module, sysfs_path, name) for name in (DRIVER_MODULES if modules is None else modules)},
        "packages": installed,
        "available": {name: offered.get(name, []) for name in packages} if available else {},
        "erdma_devices": erdma_devices(sysfs_path),
        "erdma_links": erdma_links(sysfs_path),
    }
