"""driver_facts in-process: a sysfs/procfs tree on disk, dpkg-query, apt-cache and modinfo
answers queued, the exact argv asserted."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.inference.plugins.module_utils._drivers import SECURE_BOOT_EFIVAR
from ansible_collections.llmops.inference.plugins.modules import driver_facts


@pytest.fixture
def commands(monkeypatch):
    binaries = {"dpkg-query": "/usr/bin/dpkg-query", "apt-cache": "/usr/bin/apt-cache", "modinfo": "/usr/sbin/modinfo"}
    state = {"answers": {}, "calls": [], "binaries": binaries}

    def run_command(self, args, environ_update=None, **_):
        state["calls"].append(list(args))
        return state["answers"].get(args[0].rsplit("/", 1)[-1], (0, "", ""))

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: state["binaries"].get(name))
    return state


def write(root, relative, content, binary=False):
    path = os.path.join(str(root), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if binary else "w") as handle:
        handle.write(content)


@pytest.fixture
def tree(tmp_path):
    sysfs, proc = tmp_path / "sys", tmp_path / "proc"
    write(sysfs, "firmware/efi/efivars/" + SECURE_BOOT_EFIVAR, b"\x06\x00\x00\x00\x01", binary=True)
    write(sysfs, "module/nvidia/version", "580.95.05\n")
    write(sysfs, "module/erdma/parameters/compat_mode", "Y\n")
    write(sysfs, "class/iommu/dmar0/.keep", "")
    write(sysfs, "kernel/iommu_groups/0/type", "identity\n")
    write(proc, "cmdline", "BOOT_IMAGE=/vmlinuz ro iommu=pt\n")
    nic = sysfs / "bus/pci/devices/0000:01:00.0"
    nic.mkdir(parents=True)
    (sysfs / "bus/pci/drivers/erdma").mkdir(parents=True)
    os.symlink(str(sysfs / "bus/pci/drivers/erdma"), str(nic / "driver"))
    (sysfs / "class/infiniband/erdma_0").mkdir(parents=True)
    os.symlink(str(nic), str(sysfs / "class/infiniband/erdma_0/device"))
    write(sysfs, "class/infiniband/erdma_0/ports/1/gid_attrs/ndevs/0", "\n")
    write(sysfs, "class/infiniband/erdma_0/ports/1/gid_attrs/ndevs/1", "eth1\n")
    write(sysfs, "class/net/eth1/mtu", "8500\n")
    return {"sysfs_path": str(sysfs), "proc_path": str(proc)}


def test_reads_firmware_modules_packages_and_devices(commands, tree, run_module):
    commands["answers"] = {
        "dpkg-query": (1, "nvidia-open\t580.95.05-1\thold ok installed\n", "dpkg-query: no packages found matching x\n"),
        "apt-cache": (0, " nvidia-open | 580.95.05-1 | file:/srv/repo  Packages\n", ""),
        "modinfo": (1, "", "modinfo: ERROR: Module nouveau not found.\n"),
    }
    result, failed = run_module(driver_facts.main, dict(tree, modules=["nvidia", "nouveau", "erdma"],
                                                        packages=["nvidia-open", "x"], available=True))
    assert not failed and not result["changed"]
    facts = result["driver_host"]
    assert result["ansible_facts"]["llmops_driver_host"] == facts
    assert facts["secure_boot"]["state"] == "enabled"
    assert facts["iommu"] == {"state": "passthrough", "evidence": "IOMMU dmar0 in passthrough (every group is identity)"}
    assert facts["modules"]["nvidia"] == {"loaded": True, "version": "580.95.05", "parameters": {}, "available": False}
    assert facts["modules"]["nouveau"]["loaded"] is False
    assert facts["modules"]["erdma"]["parameters"] == {"compat_mode": "Y"}
    assert facts["packages"] == {"nvidia-open": {"version": "580.95.05-1", "held": True}}
    assert facts["available"] == {"nvidia-open": ["580.95.05-1"], "x": []}
    assert facts["erdma_devices"] == ["erdma_0"]
    assert facts["erdma_links"] == {"erdma_0": {"netdev": "eth1", "mtu": 8500}}
    assert facts["package_manager"] == "apt"
    assert ["/usr/bin/dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n", "nvidia-open", "x"] in commands["calls"]
    assert ["/usr/bin/apt-cache", "madison", "nvidia-open", "x"] in commands["calls"]


def test_legacy_boot_and_no_iommu(commands, tmp_path, run_module):
    result, failed = run_module(driver_facts.main, {"sysfs_path": str(tmp_path), "proc_path": str(tmp_path)})
    facts = result["driver_host"]
    assert not failed
    assert facts["secure_boot"] == {"state": "disabled", "evidence": "no EFI firmware (legacy boot)"}
    assert facts["iommu"]["state"] == "off" and facts["erdma_devices"] == []


def test_secure_boot_without_efivarfs_asks_mokutil(commands, tmp_path, run_module):
    (tmp_path / "firmware" / "efi" / "efivars").mkdir(parents=True)
    commands["binaries"]["mokutil"] = "/usr/bin/mokutil"
    commands["answers"] = {"mokutil": (0, "SecureBoot enabled\n", "")}
    result, _failed = run_module(driver_facts.main, {"sysfs_path": str(tmp_path), "proc_path": str(tmp_path)})
    assert result["driver_host"]["secure_boot"] == {"state": "enabled", "evidence": "mokutil --sb-state: SecureBoot enabled"}
    del commands["binaries"]["mokutil"]
    result, _failed = run_module(driver_facts.main, {"sysfs_path": str(tmp_path), "proc_path": str(tmp_path)})
    assert result["driver_host"]["secure_boot"]["state"] == "unknown"


def test_a_failing_package_query_is_reported_with_its_evidence(commands, tmp_path, run_module):
    commands["answers"] = {"dpkg-query": (2, "", "dpkg-query: error: database is locked\n")}
    result, failed = run_module(driver_facts.main, {"sysfs_path": str(tmp_path), "proc_path": str(tmp_path), "packages": ["a"]})
    assert failed and result["msg"] == "dpkg-query failed (rc 2): dpkg-query: error: database is locked"
    assert result["stderr"] == "dpkg-query: error: database is locked\n"
