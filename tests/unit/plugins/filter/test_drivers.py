"""The drivers filters: each refusal names host, variable, value and fix; versions and holds;
verify problems; reboot reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.llmops.inference.plugins.filter import drivers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEBIAN = {"distribution": "Debian", "distribution_major_version": "12", "distribution_version": "12.8", "architecture": "x86_64"}
H100 = {"vendor": "nvidia", "pci_count": 8, "pci_device_ids": ["0x2330"], "nvswitch_count": 4, "erdma_nic_count": 1}
HOST = {"kernel_release": "6.1.0-28-amd64", "package_manager": "apt", "secure_boot": {"state": "disabled", "evidence": "x"},
        "iommu": {"state": "off", "evidence": "no IOMMU"}, "modules": {}}
SETTINGS = {"install": True, "branch": "580", "version": "", "kernel_module_type": "auto", "repository_url": "",
            "repository_trusted": False, "persistenced": True}


def with_(base, **changes):
    return dict(base, **changes)


@pytest.mark.parametrize("accelerators, roles", [
    (H100, ["nvidia_driver", "erdma"]),
    ({"vendor": "vastai", "erdma_nic_count": 0}, ["vastai_driver"]),
    ({"vendor": "cpu", "erdma_nic_count": 0}, []),
    ({"vendor": "cpu", "erdma_nic_count": 2}, ["erdma"]),
])
def test_the_driver_roles_a_node_checks(accelerators, roles):
    assert drivers.driver_roles_to_check(accelerators) == roles


def test_a_supported_node_has_no_problem():
    assert drivers.nvidia_driver_problems("gpu1", H100, DEBIAN, HOST, SETTINGS, False) == []


@pytest.mark.parametrize("os_facts, host, settings, signed, expected", [
    (with_(DEBIAN, distribution_major_version="11", distribution_version="11.9"), HOST, SETTINGS, False,
     "On gpu1: the NVIDIA driver role supports Debian 12, Ubuntu 22.04 or 24.04, and this node runs "
     "Debian 11.9. Fix: use a supported OS, or set nvidia_driver_install: false and install the driver yourself (the "
     "role then only verifies it)."),
    (DEBIAN, HOST, with_(SETTINGS, branch="581"), False,
     "On gpu1: nvidia_driver_branch=581 is wrong: branch 581 is not one of NVIDIA's driver branches (535, 550, 560, "
     "565, 570, 575, 580, 590). Fix: set nvidia_driver_branch to one of them."),
    (DEBIAN, HOST, with_(SETTINGS, version="570.124.06"), False,
     "On gpu1: nvidia_driver_version=570.124.06 is not of nvidia_driver_branch=580. Fix: set both to the same branch "
     "(e.g. nvidia_driver_branch: \"570\")."),
    (DEBIAN, HOST, with_(SETTINGS, repository_url="https://mirror.example/cuda", repository_trusted=True), False,
     "On gpu1: nvidia_driver_repository_trusted=true turns off signature checks, allowed only for a local file: "
     "mirror, but nvidia_driver_repository_url='https://mirror.example/cuda'. Fix: set "
     "nvidia_driver_repository_key_url to your mirror's key and nvidia_driver_repository_trusted: false."),
    (DEBIAN, with_(HOST, secure_boot={"state": "enabled", "evidence": "/sys/firmware/efi/efivars/SecureBoot-x = 1"}),
     SETTINGS, False,
     "On gpu1: Secure Boot is on (/sys/firmware/efi/efivars/SecureBoot-x = 1) and llmops_kernel_modules_signed=false, "
     "so the kernel would refuse the unsigned NVIDIA modules. Fix: enroll the signing key as a MOK (mokutil --import) "
     "or use modules signed for this kernel by the distribution, then set llmops_kernel_modules_signed: true for this "
     "host; or turn Secure Boot off in the firmware."),
])
def test_nvidia_refusals(os_facts, host, settings, signed, expected):
    assert drivers.nvidia_driver_problems("gpu1", H100, os_facts, host, settings, signed) == [expected]


def test_secure_boot_that_cannot_be_read_is_refused_too():
    host = with_(HOST, secure_boot={"state": "unknown", "evidence": "EFI firmware, but efivars is empty"})
    assert drivers.nvidia_driver_problems("gpu1", H100, DEBIAN, host, SETTINGS, False) == [
        "On gpu1: Secure Boot could not be read (EFI firmware, but efivars is empty), and an unsigned NVIDIA module would "
        "be refused if it is on. Fix: mount efivarfs or install mokutil so it can be read, or set "
        "llmops_kernel_modules_signed: true for this host if the modules are signed or Secure Boot is off."]


def test_secure_boot_passes_once_the_operator_says_the_modules_are_signed():
    host = with_(HOST, secure_boot={"state": "enabled", "evidence": "x"})
    assert drivers.nvidia_driver_problems("gpu1", H100, DEBIAN, host, SETTINGS, True) == []


def test_pre_turing_gpus_refuse_a_branch_after_580_and_open_modules():
    v100 = with_(H100, pci_device_ids=["0x1db1"])
    problems = drivers.nvidia_driver_problems("gpu1", v100, DEBIAN, HOST, with_(SETTINGS, branch="590", kernel_module_type="open"), False)
    assert problems == [
        "On gpu1: nvidia_driver_kernel_module_type=open does not fit: open kernel modules do not support pre-turing GPUs "
        "(Maxwell, Pascal, Volta) (generations pre-turing). Fix: set nvidia_driver_kernel_module_type: auto.",
        "On gpu1: nvidia_driver_branch=590 does not support this node's Maxwell/Pascal/Volta GPUs; 580 is the last "
        "branch that does. Fix: set nvidia_driver_branch: \"580\"."]


def test_verify_only_skips_the_install_checks():
    old_os = with_(DEBIAN, distribution_major_version="11")
    assert drivers.nvidia_driver_problems("gpu1", H100, old_os, HOST, with_(SETTINGS, install=False), False) == []


def plan_with(available, installed=None, settings=None):
    settings = settings or SETTINGS
    plan = drivers.nvidia_driver_plan(H100, DEBIAN, HOST, settings)
    host = with_(HOST, available=available, packages=installed or {})
    return drivers.nvidia_driver_versions(plan, host, settings)


def test_versions_take_the_newest_driver_of_the_branch_and_its_fabric_manager():
    versions = plan_with({"nvidia-open": ["580.95.05-1", "590.48.01-1", "580.82.07-1"],
                          "nvidia-fabricmanager": ["580.95.05-1", "580.82.07-1", "590.48.01-1"]})
    assert versions == {"driver": "580.95.05-1", "fabricmanager": "580.95.05-1", "problems": []}


def test_a_driver_without_its_fabric_manager_is_refused_with_the_versions_both_offer():
    versions = plan_with({"nvidia-open": ["580.76.05-1", "580.82.07-1", "580.95.05-1", "590.48.01-1"],
                          "nvidia-fabricmanager": ["580.82.07-1", "580.95.05-1", "590.48.01-1"]},
                         settings=with_(SETTINGS, version="580.76.05"))
    assert versions["problems"] == [
        "nvidia-fabricmanager: the fabric manager must be at the driver's version 580.76.05, but the repository offers "
        "580.82.07-1, 580.95.05-1, 590.48.01-1 (a mismatch leaves NVSwitch GPUs unusable, CUDA error 802). Fix: set "
        "nvidia_driver_version to a version both offer (580.82.07, 580.95.05), or update the mirror."]


def test_an_empty_repository_is_refused():
    assert plan_with({"nvidia-open": []})["problems"] == [
        "nvidia-open: the repository offers no driver of branch 580 (it has nothing). Fix: set nvidia_driver_version to "
        "one the repository offers, or point nvidia_driver_repository_url at a mirror that has it."]


def test_packages_to_hold_are_the_drivers_components_not_yet_held():
    host = with_(HOST, packages={"nvidia-open": {"version": "580.95.05-1", "held": True},
                                 "nvidia-driver-cuda": {"version": "580.95.05-1", "held": False},
                                 "nvidia-fabricmanager": {"version": "580.95.05-1", "held": False},
                                 "nvidia-driver-pinning-580": {"version": "580-1", "held": False},
                                 "nvidia-container-toolkit": {"version": "1.17.8-1", "held": False}})
    assert drivers.packages_to_hold(host, {"driver": "580.95.05-1"}, ["nvidia-driver-pinning-580"]) == [
        "nvidia-driver-cuda", "nvidia-driver-pinning-580", "nvidia-fabricmanager"]


def answered(**changes):
    return with_(H100, **dict({"driver": {"answered": True, "state": "ok", "version": "580.95.05"}, "driver_count": 8}, **changes))


UNITS_UP = {"nvidia-persistenced": "active", "nvidia-fabricmanager": "active"}


def test_verify_passes_on_a_healthy_hgx_node():
    query = (FIXTURES / "nvidia_smi" / "h100-q-fabric.txt").read_text()
    assert drivers.nvidia_verify_problems("gpu1", answered(), "Enabled\n" * 8, query, UNITS_UP, SETTINGS) == []


def test_verify_names_every_problem():
    query = (FIXTURES / "nvidia_smi" / "h100-q-fabric.txt").read_text().replace(": Completed", ": In Progress", 1)
    problems = drivers.nvidia_verify_problems("gpu1", answered(driver_count=7), "Enabled\nDisabled\n", query,
                                              {"nvidia-persistenced": "active", "nvidia-fabricmanager": "failed"},
                                              with_(SETTINGS, version="580.105.08"))
    assert problems == [
        "On gpu1: nvidia-smi sees 7 GPU(s) but the PCI bus has 8",
        "On gpu1: persistence mode is not Enabled on GPU(s) 1",
        "On gpu1: GPU 0 fabric state In Progress, status Success",
        "On gpu1: nvidia-fabricmanager is failed",
        "On gpu1: the loaded driver is 580.95.05, nvidia_driver_version is 580.105.08 (a reboot loads the new one)"]


def test_verify_reports_a_silent_driver():
    silent = with_(H100, driver={"answered": False, "state": "driver_unreachable", "message": "NVIDIA-SMI has failed"})
    assert drivers.nvidia_verify_problems("gpu1", silent, "", "", UNITS_UP, SETTINGS) == [
        "On gpu1: nvidia-smi did not answer (state driver_unreachable): NVIDIA-SMI has failed"]


@pytest.mark.parametrize("modules, reasons", [
    ({"nouveau": {"loaded": True}}, ["nouveau is loaded (now blocked); the NVIDIA module can load only after a reboot"]),
    ({"nvidia": {"loaded": True, "version": "580.82.07"}}, ["the running NVIDIA module is 580.82.07 but 580.95.05 is installed"]),
    ({"nvidia": {"loaded": True, "version": "580.95.05"}}, []),
])
def test_reboot_reasons(modules, reasons):
    assert drivers.nvidia_reboot_reasons(with_(HOST, modules=modules), {"driver": "580.95.05-1"}) == reasons


def test_a_module_that_does_not_load_is_a_failure_with_its_evidence_not_a_reboot():
    failed = {"rc": 1, "stderr": "modprobe: ERROR: could not insert 'nvidia': Key was rejected by service\n"}
    assert drivers.module_load_problem("gpu1", "nvidia", failed) == (
        "On gpu1: modprobe nvidia failed (rc 1): modprobe: ERROR: could not insert 'nvidia': Key was rejected by service. "
        "Check the module was built for the running kernel (dkms status) and that Secure Boot accepts it.")
    assert drivers.module_load_problem("gpu1", "nvidia", {"skipped": True}) == ""
    assert drivers.module_load_problem("gpu1", "nvidia", {"rc": 0}) == ""


def test_a_driver_installed_by_other_means_is_not_replaced():
    plan = drivers.nvidia_driver_plan(H100, DEBIAN, HOST, SETTINGS)
    running = with_(HOST, modules={"nvidia": {"loaded": True, "version": "570.124.06"}}, packages={})
    assert drivers.foreign_driver_problem("gpu1", running, H100, plan) == (
        "On gpu1: an NVIDIA driver 570.124.06 is already running, and it was not installed from "
        "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ (package nvidia-open is not installed). "
        "Nothing was changed. Fix: set nvidia_driver_install: false for this host to keep it (the role then only verifies "
        "it), or remove it and rerun.")
    ours = with_(running, packages={"nvidia-open": {"version": "580.95.05-1", "held": True}})
    assert drivers.foreign_driver_problem("gpu1", ours, H100, plan) == ""
    assert drivers.foreign_driver_problem("gpu1", with_(HOST, modules={}), H100, plan) == ""


def test_toolkit_version_is_kept_once_installed():
    host = with_(HOST, available={"nvidia-container-toolkit": ["1.17.8-1", "1.18.0-1"]},
                 packages={"nvidia-container-toolkit": {"version": "1.17.8-1", "held": True}})
    assert drivers.toolkit_version(host) == {"version": "1.17.8-1", "problem": ""}
    assert drivers.toolkit_version(host, "1.18.0") == {"version": "1.18.0-1", "problem": ""}
    assert "nvidia_container_toolkit_version=1.9.9 is not in the repository" in drivers.toolkit_version(host, "1.9.9")["problem"]
    assert drivers.with_version(["a", "b"], "1.17.8-1") == ["a=1.17.8-1", "b=1.17.8-1"]


VASTAI = {"vendor": "vastai", "pci_count": 4}
VASTAI_SETTINGS = {"package": "", "package_checksum": "", "iommu_allowed": ["off", "passthrough"]}


def test_vastai_without_a_package_is_refused():
    assert drivers.vastai_driver_problems("va1", VASTAI, DEBIAN, HOST, VASTAI_SETTINGS, False) == [
        "On va1: the node has 4 VastAI die(s) but vastai_driver_package is empty. Fix: set it to the driver package "
        "Vastai Technologies gave you (a vastai_driver_install_<version>.run, or a vastai-pci-dkms .deb), as a path "
        "on the control node or an https URL of your mirror; this collection never downloads it from the vendor."]


def test_vastai_refusals(tmp_path):
    package = tmp_path / "vastai-pci-dkms_1.0_all.rpm"
    package.write_text("x")
    iommu_on = with_(HOST, iommu={"state": "on", "evidence": "IOMMU dmar0 translates DMA (group types DMA)"})
    problems = drivers.vastai_driver_problems("va1", VASTAI, DEBIAN, iommu_on, with_(VASTAI_SETTINGS, package=str(package)), False)
    assert problems == [
        "On va1: vastai_driver_package=%s is not a .run or .deb file. Fix: give the package as Vastai Technologies "
        "ships it for Debian and Ubuntu." % package,
        "On va1: the IOMMU is on (IOMMU dmar0 translates DMA (group types DMA)), and vastai_driver_iommu_allowed="
        "['off', 'passthrough']: the VastAI driver and its serving container refuse an enabled IOMMU. Fix: boot with "
        "intel_iommu=off (or amd_iommu=off), or iommu=pt for passthrough, on the kernel command line and reboot; or add "
        "'on' to vastai_driver_iommu_allowed if your driver release accepts it."]


def test_vastai_package_checks(tmp_path):
    assert drivers.vastai_driver_problems("va1", VASTAI, DEBIAN, HOST, with_(VASTAI_SETTINGS, package="/nope/driver.run"), False) == [
        "On va1: vastai_driver_package=/nope/driver.run does not exist on the control node. Fix: copy the file there or "
        "give your mirror's https URL."]
    assert drivers.vastai_driver_problems("va1", VASTAI, DEBIAN, HOST, with_(VASTAI_SETTINGS, package="files/driver.deb"), False) == [
        "On va1: vastai_driver_package=files/driver.deb is a relative path. Fix: give the absolute path of the file on the "
        "control node."]
    assert drivers.vastai_driver_problems("va1", VASTAI, DEBIAN, HOST, with_(
        VASTAI_SETTINGS, package="http://mirror/driver.deb", package_checksum="sha256:ab"), False) == []
    assert "without TLS and without a checksum" in drivers.vastai_driver_problems(
        "va1", VASTAI, DEBIAN, HOST, with_(VASTAI_SETTINGS, package="http://mirror/driver.deb"), False)[0]
    assert "is not a .run or .deb file" in drivers.vastai_driver_problems(
        "va1", VASTAI, DEBIAN, HOST, with_(VASTAI_SETTINGS, package="https://mirror/driver.zip"), False)[0]


def test_vastai_verify():
    ok = {"pci_count": 4, "driver_count": 4, "driver": {"answered": True, "version": "00.26.01.23"}}
    assert drivers.vastai_verify_problems("va1", ok) == []
    assert drivers.vastai_verify_problems("va1", with_(ok, driver_count=3)) == [
        "On va1: the driver exposes 3 /dev/vacc* node(s) but the PCI bus has 4 AI die(s)"]


ERDMA = {"vendor": "nvidia", "erdma_nic_count": 1}


def test_erdma_refusals():
    no_module = with_(HOST, modules={"erdma": {"loaded": False, "available": False}})
    assert drivers.erdma_problems("gpu1", ERDMA, no_module, {"source": "auto", "installer_package": ""}, False) == [
        "On gpu1: the node has 1 eRDMA NIC(s) but the kernel 6.1.0-28-amd64 has no erdma module and erdma_installer_package "
        "is empty. Fix: set erdma_installer_package to Alibaba's erdma_installer-<version>.tar.gz."]
    plain_http = {"source": "auto", "installer_package": "http://mirror/erdma.tar.gz", "installer_checksum": ""}
    assert drivers.erdma_problems("gpu1", ERDMA, no_module, plain_http, False) == [
        "On gpu1: erdma_installer_package=http://mirror/erdma.tar.gz is fetched without TLS and without a checksum, and it "
        "runs as root. Fix: use https or set erdma_installer_checksum (sha256:<hex>)."]
    assert "erdma_source=installer but erdma_installer_package is empty" in drivers.erdma_problems(
        "gpu1", ERDMA, no_module, {"source": "installer", "installer_package": ""}, False)[0]
    shipped = with_(HOST, modules={"erdma": {"loaded": False, "available": True}})
    assert drivers.erdma_problems("gpu1", ERDMA, shipped, {"source": "distribution", "installer_package": ""}, False) == []


def test_erdma_verify():
    text = (FIXTURES / "erdma" / "ibv_devinfo.txt").read_text()
    host = with_(HOST, erdma_devices=["erdma_0"], modules={"erdma": {"loaded": True, "parameters": {"compat_mode": "Y"}}})
    assert drivers.erdma_verify_problems("gpu1", ERDMA, host, text, True) == []
    down = text.replace("PORT_ACTIVE (4)", "PORT_DOWN (1)")
    plain = with_(host, modules={"erdma": {"loaded": True, "parameters": {"compat_mode": "N"}}})
    assert drivers.erdma_verify_problems("gpu1", ERDMA, plain, down, True) == [
        "On gpu1: erdma_0 ports are PORT_DOWN, not PORT_ACTIVE",
        "On gpu1: erdma is loaded with compat_mode=N, wanted Y (a reboot loads it with the new option)"]
    assert drivers.erdma_verify_problems("gpu1", ERDMA, with_(host, erdma_devices=[]), "", False) == [
        "On gpu1: 1 eRDMA NIC(s) on the PCI bus but 0 RDMA device(s) with the erdma driver (none)"]


def test_an_erdma_interface_at_neither_8500_nor_1400_is_refused_before_and_after_installing():
    host = with_(HOST, erdma_devices=["erdma_0"], modules={"erdma": {"loaded": True, "parameters": {"compat_mode": "Y"}}},
                 erdma_links={"erdma_0": {"netdev": "eth1", "mtu": 1500}})
    [problem] = drivers.erdma_mtu_problems("gpu1", host)
    assert problem.startswith("On gpu1: erdma_0 carries eth1 with MTU 1500; with NCCL's LL128 protocol eRDMA needs MTU 8500")
    assert "ip link set eth1 mtu 8500" in problem and "NCCL_PROTO: '^LL128'" in problem
    assert drivers.erdma_problems("gpu1", ERDMA, host, {"source": "distribution"}, False) == [problem]
    text = (FIXTURES / "erdma" / "ibv_devinfo.txt").read_text()
    assert drivers.erdma_verify_problems("gpu1", ERDMA, host, text, True) == [problem]
    assert drivers.erdma_verify_problems("gpu1", ERDMA, host, text, True, mtu_check=False) == []
    assert drivers.erdma_verify_problems("gpu1", ERDMA, host, text, True, mtu_check="false") == []  # -e erdma_mtu_check=false
    for mtu in (8500, 1400, None):  # None: sysfs does not say (erdma not loaded yet)
        assert drivers.erdma_mtu_problems("gpu1", with_(host, erdma_links={"erdma_0": {"netdev": "eth1", "mtu": mtu}})) == []


def test_summary_and_unit_states():
    assert drivers.unit_states(["a", "b"], "active\ninactive\n") == {"a": "active", "b": "inactive"}
    assert drivers.unit_states(["a", "b"], "") == {"a": "unknown", "b": "unknown"}
    line = drivers.nvidia_summary(answered(), with_(SETTINGS, hold=True), {"module_type": "open"})
    assert line == ("NVIDIA driver 580.95.05 (open modules, held): 8 of 8 GPU(s), persistence on, 4 NVSwitch with the "
                    "fabric manager active and the fabric Completed/Success")
