"""Driver decisions: the package plan per OS, branch and GPU generation, versions, and parsers
of real outputs (apt, dpkg, nvidia-smi -q, ibv_devinfo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _drivers as drivers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize("device_id, generation", [
    ("0x1db1", "pre-turing"),   # V100 SXM2 (Volta)
    ("0x1b06", "pre-turing"),   # GTX 1080 Ti (Pascal)
    ("0x1e02", "turing-to-hopper"),  # TITAN RTX, first id of the open modules' list
    ("0x20b0", "turing-to-hopper"),  # A100
    ("0x2330", "turing-to-hopper"),  # H100 SXM
    ("0x26b9", "turing-to-hopper"),  # L40S (Ada)
    ("0x2342", "grace-hopper"),  # GH200
    ("0x2901", "blackwell"),     # B200
    ("0x3182", "blackwell"),     # B300
    ("zz", "unknown"),
])
def test_gpu_generation_from_the_pci_id(device_id, generation):
    assert drivers.gpu_generation(device_id) == generation


@pytest.mark.parametrize("ids, override, expected", [
    (["0x2330"], "auto", ("open", None)),
    (["0x1db1"], "auto", ("proprietary", None)),
    (["0x2901"], "auto", ("open", None)),
    (["0x2330"], "proprietary", ("proprietary", None)),
    (["0x2901"], "proprietary", (None, "blackwell GPUs need the open kernel modules")),
    (["0x1db1"], "open", (None, "open kernel modules do not support pre-turing GPUs (Maxwell, Pascal, Volta)")),
    (["0x1db1", "0x2342"], "auto", (None, "the node mixes grace-hopper GPUs (open modules only) with pre-turing GPUs (proprietary only)")),
])
def test_kernel_module_type(ids, override, expected):
    module_type, _reason, problem = drivers.kernel_module_type(ids, override)
    assert (module_type, problem) == expected


# The package plan on every supported OS: names, repository, pinning, fabric manager.
@pytest.mark.parametrize("distribution, major, arch, branch, module_type, nvswitch, expected", [
    ("Debian", "12", "x86_64", "580", "open", True, {
        "url": "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/",
        "key": "3bf863cc.pub", "manager": "apt",
        "prerequisites": ["linux-headers-6.1.0-28-amd64", "dkms"], "pinning": ["nvidia-driver-pinning-580"],
        "driver": "nvidia-open", "fabricmanager": "nvidia-fabricmanager"}),
    ("Ubuntu", "22", "x86_64", "570", "proprietary", True, {
        "url": "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64/",
        "key": "3bf863cc.pub", "manager": "apt",
        "prerequisites": ["linux-headers-6.1.0-28-amd64", "dkms"], "pinning": [],
        "driver": "cuda-drivers-570", "fabricmanager": "nvidia-fabricmanager-570"}),
    ("Ubuntu", "24", "aarch64", "590", "open", False, {
        "url": "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/sbsa/",
        "key": "3bf863cc.pub", "manager": "apt",
        "prerequisites": ["linux-headers-6.1.0-28-amd64", "dkms"], "pinning": ["nvidia-driver-pinning-590"],
        "driver": "nvidia-open", "fabricmanager": None}),
    ("Ubuntu", "24", "x86_64", "550", "open", False, {
        "url": "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/",
        "key": "3bf863cc.pub", "manager": "apt",
        "prerequisites": ["linux-headers-6.1.0-28-amd64", "dkms"], "pinning": [],
        "driver": "nvidia-open-550", "fabricmanager": None}),
    # The RHEL family is refused: no repository for it.
])
def test_package_plan_per_os_branch_and_generation(distribution, major, arch, branch, module_type, nvswitch, expected):
    plan = drivers.nvidia_package_plan(distribution, major, arch, "6.1.0-28-amd64", branch, module_type, nvswitch)
    assert plan["problems"] == []
    assert plan["repository"] == {"url": expected["url"], "key_url": expected["url"] + expected["key"],
                                  "manager": expected["manager"]}
    for key in ("prerequisites", "pinning", "driver", "fabricmanager"):
        assert plan[key] == expected[key], key


def test_a_mirror_replaces_nvidias_repository():
    plan = drivers.nvidia_package_plan("Debian", "12", "x86_64", "6.1", "580", "open", False, "file:/srv/mirror")
    assert plan["repository"]["url"] == "file:/srv/mirror/"


@pytest.mark.parametrize("distribution, major, arch, branch, problem", [
    ("Debian", "11", "x86_64", "580", "the NVIDIA driver role supports Debian 12, Ubuntu 22.04 or 24.04"),
    ("Ubuntu", "20", "x86_64", "580", "the NVIDIA driver role supports Debian 12, Ubuntu 22.04 or 24.04"),
    ("Rocky", "9", "x86_64", "580", "the NVIDIA driver role supports Debian 12, Ubuntu 22.04 or 24.04"),
    ("Debian", "12", "ppc64le", "580", "NVIDIA's repositories have no packages for the ppc64le architecture"),
    ("Debian", "12", "x86_64", "581", "branch 581 is not one of NVIDIA's driver branches (535, 550, 560, 565, 570, 575, 580, 590)"),
])
def test_package_plan_refuses_what_it_cannot_install(distribution, major, arch, branch, problem):
    assert drivers.nvidia_package_plan(distribution, major, arch, "6.1", branch, "open", False)["problems"] == [problem]


AVAILABLE = ["590.48.01-1", "580.95.05-1", "580.82.07-1", "580.105.08-1", "580.76.05-1"]


@pytest.mark.parametrize("installed, wanted, expected", [
    (None, "", ("580.105.08-1", None)),            # newest of the branch, numbers compared as numbers
    ("580.82.07-1", "", ("580.82.07-1", None)),    # installed is kept: a rerun never moves it
    ("580.82.07-1", "580.95.05", ("580.95.05-1", None)),  # an explicit version moves it
    (None, "580.1.1", (None, "version 580.1.1 is not in the repository (branch 580 offers "
                             "580.76.05-1, 580.82.07-1, 580.95.05-1, 580.105.08-1)")),
])
def test_choose_driver_version(installed, wanted, expected):
    assert drivers.choose_driver_version(AVAILABLE, installed, "580", wanted) == expected


def test_fabric_manager_must_equal_the_driver():
    assert drivers.fabricmanager_version("580.95.05-1", ["580.95.05-1", "580.82.07-1"]) == ("580.95.05-1", None)
    assert drivers.fabricmanager_version("580.76.05-1", ["580.95.05-1"]) == (
        None, "the fabric manager must be at the driver's version 580.76.05, but the repository offers 580.95.05-1")


def test_versions_sort_as_dpkg_orders_them():
    versions = ["3:580.82.07-1.el9", "580.105.08-1", "580.95.05-1", "580.95.05~rc1-1", "570.133.20-1",
                "570.133.20-0ubuntu0.24.04.1", "580.95.05.1-1"]
    assert sorted(versions, key=drivers.version_key) == [
        "570.133.20-0ubuntu0.24.04.1", "570.133.20-1", "580.95.05~rc1-1", "580.95.05-1", "580.95.05.1-1", "580.105.08-1",
        "3:580.82.07-1.el9"]


def test_upstream_version_strips_epoch_and_revision():
    assert drivers.upstream_version("3:580.95.05-1.el9") == "580.95.05"
    assert drivers.upstream_version("580.95.05-0ubuntu1") == "580.95.05"


def test_packages_at_the_drivers_version():
    installed = {"nvidia-open": "580.95.05-1", "libnvidia-compute": "580.95.05-1", "nvidia-container-toolkit": "1.17.8-1"}
    assert drivers.packages_at_version(installed, "580.95.05-1") == ["libnvidia-compute", "nvidia-open"]


@pytest.mark.parametrize("value, state", [
    (b"\x06\x00\x00\x00\x01", "enabled"), (b"\x06\x00\x00\x00\x00", "disabled"), (None, "disabled"), (b"\x06", "disabled"),
])
def test_secure_boot_from_the_efi_variable(value, state):
    assert drivers.secure_boot_state(value) == state


@pytest.mark.parametrize("cmdline, devices, types, state", [
    ("ro quiet intel_iommu=off", [], [], "off"),
    ("ro quiet", [], [], "off"),
    # What the kernel registered wins: intel_iommu=off on an AMD host leaves AMD's IOMMU on.
    ("ro quiet intel_iommu=off", ["ivhd0"], ["DMA"], "on"),
    ("ro iommu=pt", ["dmar0"], ["identity"], "passthrough"),
    ("ro amd_iommu=pt", ["ivhd0"], [], "passthrough"),
    ("ro", ["dmar0", "dmar1"], ["identity", "identity"], "passthrough"),
    ("ro intel_iommu=on", ["dmar0"], ["DMA", "identity"], "on"),
    ("ro intel_iommu=on", ["dmar0"], [], "on"),
])
def test_iommu_state(cmdline, devices, types, state):
    assert drivers.iommu_state(cmdline, devices, types)[0] == state


def test_parse_dpkg_query_keeps_installed_and_reads_holds():
    output = ("nvidia-open\t580.95.05-1\thold ok installed\n"
              "nvidia-driver-cuda\t580.95.05-1\tinstall ok installed\n"
              "nvidia-fabricmanager\t\tunknown ok not-installed\n"
              "libnvidia-container1:amd64\t1.17.8-1\tinstall ok installed\n")
    assert drivers.parse_dpkg_query(output) == {
        "nvidia-open": {"version": "580.95.05-1", "held": True},
        "nvidia-driver-cuda": {"version": "580.95.05-1", "held": False},
        "libnvidia-container1": {"version": "1.17.8-1", "held": False},
    }


def test_parse_apt_madison():
    output = (" nvidia-open | 580.95.05-1 | file:/srv/llmops-nvidia-repo  Packages\n"
              " nvidia-open | 580.82.07-1 | file:/srv/llmops-nvidia-repo  Packages\n"
              "nvidia-fabricmanager | 580.95.05-1 | https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64  Packages\n")
    assert drivers.parse_apt_madison(output) == {"nvidia-open": ["580.95.05-1", "580.82.07-1"],
                                                 "nvidia-fabricmanager": ["580.95.05-1"]}


def test_fabric_state_of_every_gpu_from_nvidia_smi_q():
    text = (FIXTURES / "nvidia_smi" / "h100-q-fabric.txt").read_text()
    gpus = drivers.parse_nvidia_smi_fabric(text)
    assert gpus == [{"state": "Completed", "status": "Success"}] * 8
    assert drivers.fabric_problems(gpus) == []
    broken = text.replace("Status                            : Success", "Status                            : Insufficient Resources", 1)
    assert drivers.fabric_problems(drivers.parse_nvidia_smi_fabric(broken)) == [
        "GPU 0 fabric state Completed, status Insufficient Resources"]
    # A100 HGX reports N/A even with the fabric manager running: not a problem of its own.
    assert drivers.fabric_problems([{"state": "N/A", "status": "N/A"}]) == []


def test_ibv_devinfo_ports():
    text = (FIXTURES / "erdma" / "ibv_devinfo.txt").read_text()
    assert drivers.parse_ibv_devinfo(text) == {"erdma_0": ["PORT_ACTIVE"]}
    assert drivers.parse_ibv_devinfo(text.replace("PORT_ACTIVE (4)", "PORT_DOWN (1)")) == {"erdma_0": ["PORT_DOWN"]}
