"""The drivers phase on the converged hosts: what apt, dpkg, systemd and the files say, and
refusals rerun against the same hosts. The hardware boundary is SIMULATED (see
molecule.yml); everything asserted here is the real state of these hosts. A refusal that is a
decision on inputs alone (an unknown branch, no VastAI package) is proven by the unit tests of
plugins/filter/drivers.py; here, one refusal per driver role proves the header runs its checks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess

NVIDIA, VASTAI, CPU = "llmops-drivers-nvidia", "llmops-drivers-vastai", "llmops-drivers-cpu"
DRIVER = "580.95.05-1"
SIMULATION = "/var/lib/llmops-simulation"
EFIVAR = SIMULATION + "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M)


def host(name):
    import testinfra

    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, os.environ["MOLECULE_INVENTORY_FILE"]))


def converge(*extra, check=False):
    """Run the scenario's playbook again; return (rc, output, {host: (changed, failed)})."""
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
               os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")]
    for assignment in extra:
        command += ["-e", assignment]
    if check:
        command.append("--check")
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    output = completed.stdout + completed.stderr
    recap = {match["host"]: (int(match["changed"]), int(match["failed"])) for match in RECAP.finditer(output)}
    return completed.returncode, output, recap


def module_result(name, module, args):
    command = ["ansible", "-i", os.environ["MOLECULE_INVENTORY_FILE"], name, "-m", module, "-a", args]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    return json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"][name]


def held(node):
    return set(node.check_output("apt-mark showhold").split())


# ---- NVIDIA ----------------------------------------------------------------------------------

def test_nvidia_driver_and_fabric_manager_are_one_version_and_held():
    node = host(NVIDIA)
    for package in ("nvidia-open", "nvidia-kernel-open-dkms", "nvidia-driver-cuda", "nvidia-persistenced",
                    "nvidia-fabricmanager"):
        assert node.package(package).version == DRIVER, package
    assert {"nvidia-open", "nvidia-kernel-open-dkms", "nvidia-driver-cuda", "nvidia-persistenced", "nvidia-fabricmanager",
            "nvidia-driver-pinning-580", "nvidia-container-toolkit", "nvidia-container-toolkit-base"} <= held(node)
    # The branch-pinning package went in first, and the repository's 590 driver stayed out.
    assert node.package("nvidia-driver-pinning-580").is_installed
    sources = node.file("/etc/apt/sources.list.d/llmops-nvidia.sources").content_string
    assert "URIs: file:/srv/llmops-nvidia-repo/" in sources and "Suites: /" in sources


def test_holds_keep_a_newer_driver_of_the_branch_out():
    node = host(NVIDIA)
    node.check_output("python3 /opt/llmops-tests/fixtures/driver_repo.py repo /srv/llmops-nvidia-repo --newer")
    try:
        node.check_output("apt-get update -qq")
        assert "580.105.08-1" in node.check_output("apt-cache madison nvidia-open")
        simulated = node.run("apt-get -s -o Debug::NoLocking=1 upgrade")
        assert simulated.rc == 0, simulated.stderr
        assert "Inst nvidia" not in simulated.stdout and "Inst libnvidia" not in simulated.stdout
        assert "held back" in simulated.stdout or "kept back" in simulated.stdout
    finally:
        node.check_output("python3 /opt/llmops-tests/fixtures/driver_repo.py repo /srv/llmops-nvidia-repo")
        node.check_output("apt-get update -qq")


def test_persistence_daemon_and_fabric_manager_are_enabled_and_running():
    node = host(NVIDIA)
    for unit in ("nvidia-persistenced", "nvidia-fabricmanager"):
        service = node.service(unit)
        assert service.is_enabled and service.is_running, unit


def test_accelerator_facts_report_the_driver_ok():
    result = module_result(NVIDIA, "llmops.inference.accelerator_facts",
                           "sysfs_path=%s/sys dev_path=%s/dev" % (SIMULATION, SIMULATION))
    facts = result["accelerators"]
    assert facts["driver"]["state"] == "ok" and facts["driver"]["version"] == "580.95.05"
    assert facts["driver_count"] == facts["pci_count"] == 8 and facts["nvswitch_count"] == 4


def test_docker_daemon_json_keeps_the_operators_keys():
    daemon = json.loads(host(NVIDIA).file("/etc/docker/daemon.json").content_string)
    assert daemon["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert daemon["runtimes"]["crun"] == {"path": "/usr/bin/crun"}
    assert daemon["registry-mirrors"] == ["https://mirror.llmops.test"]
    assert "default-runtime" not in daemon


# ---- VastAI, eRDMA, the CPU node ---------------------------------------------------------------

def test_vastai_driver_installed_held_and_one_node_per_ai_die():
    node = host(VASTAI)
    assert node.package("vastai-pci-dkms").version == "00.26.01.23"
    assert "vastai-pci-dkms" in held(node)
    assert node.file("/etc/modules-load.d/llmops-vastai.conf").contains("^vastai_pci$")
    result = module_result(VASTAI, "llmops.inference.accelerator_facts",
                           "sysfs_path=%s/sys dev_path=%s/dev" % (SIMULATION, SIMULATION))
    facts = result["accelerators"]
    # Five functions of device 0x0100 on the bus; the VE1 video card is not an inference die.
    assert facts["pci_count"] == facts["driver_count"] == 4
    assert facts["driver"]["version"] == "00.26.01.23" and facts["models"] == ["VA16"]


def test_erdma_loaded_with_compat_mode_on_the_gpu_node():
    node = host(NVIDIA)
    assert node.file("/etc/modprobe.d/llmops-erdma.conf").contains("^options erdma compat_mode=Y$")
    assert node.file(SIMULATION + "/sys/module/erdma/parameters/compat_mode").content_string.strip() == "Y"
    for package in ("rdma-core", "ibverbs-providers", "ibverbs-utils"):
        assert node.package(package).is_installed
    assert node.file("/bin/eadm").exists


def test_cpu_node_is_left_untouched():
    node = host(CPU)
    for path in ("/etc/apt/sources.list.d/llmops-nvidia.sources", "/srv/llmops/drivers", "/etc/modprobe.d/llmops-erdma.conf",
                 "/etc/modules-load.d/llmops-vastai.conf"):
        assert not node.file(path).exists, path
    assert node.file("/etc/docker/daemon.json").content_string.count("nvidia") == 0


# ---- check mode and refusals, rerun against the converged hosts --------------------------------

def test_check_mode_reports_drift_and_changes_nothing():
    node = host(NVIDIA)
    node.check_output("apt-mark unhold nvidia-open")
    node.check_output("systemctl disable --now nvidia-persistenced")
    try:
        rc, output, recap = converge(check=True)
        assert rc == 0, output[-3000:]
        assert recap[NVIDIA][0] > 0 and recap[CPU][0] == 0
        assert "nvidia-open" not in held(node)
        assert not node.service("nvidia-persistenced").is_running
    finally:
        node.check_output("apt-mark hold nvidia-open")
        node.check_output("systemctl enable --now nvidia-persistenced")


def assert_refused(rc, output, recap, *phrases):
    assert rc != 0
    for phrase in phrases:
        assert phrase in output, (phrase, output[-3000:])
    assert all(changed == 0 for changed, _failed in recap.values()), recap


def test_secure_boot_on_stops_in_preflight():
    node = host(NVIDIA)
    node.check_output("printf '\\006\\000\\000\\000\\001' > %s" % EFIVAR)
    try:
        rc, output, recap = converge()
        assert_refused(rc, output, recap, "On %s: Secure Boot is on" % NVIDIA, "llmops_kernel_modules_signed",
                       "mokutil --import", "Check the NVIDIA driver inputs")
    finally:
        node.check_output("printf '\\006\\000\\000\\000\\000' > %s" % EFIVAR)


@contextlib.contextmanager
def simulated(path, content):
    """SIMULATION: one file of the NVIDIA node's simulated hardware (a knob the stand-in
    nvidia-smi reads, a sysfs value) set for one test, then put back as it was."""
    node = host(NVIDIA)
    before = node.file(path).content_string if node.file(path).exists else None
    node.check_output("mkdir -p %s && printf '%%s\\n' '%s' > %s" % (os.path.dirname(path), content, path))
    try:
        yield
    finally:
        node.check_output("printf '%%s' '%s' > %s" % (before, path) if before is not None else "rm -f %s" % path)


def test_a_gpu_fallen_off_the_bus_stops_in_preflight_with_the_evidence():
    # The stand-in prints the captured line of a lost GPU after the others' rows and exits 15.
    with simulated("/etc/llmops-simulation/nvidia-smi-gpu-lost", ""):
        rc, output, recap = converge()
    assert_refused(rc, output, recap, "On %s: nvidia-smi exit 15 (a GPU has fallen off the bus" % NVIDIA,
                   "GPU is lost.", "7 of the 8 GPU(s) on the PCI bus answered; GPU 0000:2a:00.0",
                   "Fix: bring the GPU back")


def test_mig_mode_stops_in_preflight_unless_allowed():
    with simulated("/etc/llmops-simulation/nvidia-smi-mig", "0 3"):
        rc, output, recap = converge()
        assert_refused(rc, output, recap, "On %s: GPU 0 (0000:18:00.0) has MIG mode enabled" % NVIDIA,
                       "GPU 3 (0000:5d:00.0) has MIG mode enabled", "llmops_nvidia_mig_allowed: true")
        rc, output, recap = converge("llmops_nvidia_mig_allowed=true")
    assert rc == 0 and all(changed == 0 for changed, _failed in recap.values()), output[-3000:]


def test_an_erdma_interface_at_mtu_1500_stops_in_preflight():
    with simulated(SIMULATION + "/sys/class/net/eth1/mtu", "1500"):
        rc, output, recap = converge()
    assert_refused(rc, output, recap, "On %s: erdma_0 carries eth1 with MTU 1500" % NVIDIA,
                   "ip link set eth1 mtu 8500", "erdma_mtu_check: false")


def test_iommu_on_stops_the_vastai_install_in_preflight():
    node = host(VASTAI)
    node.check_output("mkdir -p %s/sys/class/iommu/dmar0 %s/sys/kernel/iommu_groups/0" % (SIMULATION, SIMULATION))
    node.check_output("echo DMA > %s/sys/kernel/iommu_groups/0/type" % SIMULATION)
    node.check_output("sed -i 's/intel_iommu=off/intel_iommu=on/' %s/proc/cmdline" % SIMULATION)
    try:
        rc, output, recap = converge()
        assert_refused(rc, output, recap, "On %s: the IOMMU is on" % VASTAI, "vastai_driver_iommu_allowed",
                       "iommu=pt")
    finally:
        node.check_output("rm -rf %s/sys/class/iommu %s/sys/kernel/iommu_groups" % (SIMULATION, SIMULATION))
        node.check_output("sed -i 's/intel_iommu=on/intel_iommu=off/' %s/proc/cmdline" % SIMULATION)


def test_a_driver_version_without_its_fabric_manager_is_refused():
    rc, output, recap = converge("nvidia_driver_version=580.76.05")
    assert_refused(rc, output, recap, "the fabric manager must be at the driver's version 580.76.05",
                   "580.82.07, 580.95.05", "Nothing was installed")
    assert host(NVIDIA).package("nvidia-open").version == DRIVER


def test_a_module_loaded_with_the_wrong_option_stops_the_run_asking_for_a_reboot():
    node = host(NVIDIA)
    parameter = SIMULATION + "/sys/module/erdma/parameters/compat_mode"
    node.check_output("echo N > %s" % parameter)
    try:
        rc, output, recap = converge()
        assert rc != 0 and recap[NVIDIA][1] == 1 and recap[VASTAI][1] == 0
        assert ("On %s: the drivers are installed but cannot run until the node reboots: erdma is loaded with "
                "compat_mode=N, NCCL needs Y" % NVIDIA) in output
        assert "llmops_reboot_policy=report" in output
    finally:
        node.check_output("echo Y > %s" % parameter)


def test_a_run_installer_runs_once_and_reruns_change_nothing():
    # Last in this file: it replaces the VastAI node's .deb with the vendor's .run form.
    node = host(VASTAI)
    node.check_output("apt-get purge -y --allow-change-held-packages vastai-pci-dkms")
    node.check_output("rm -rf %s/sys/module/vastai_pci %s/dev/vacc* %s/dev/vastai0_version" % ((SIMULATION,) * 3))
    package = "vastai_driver_package=%s/operator/vastai_driver_install_00.26.01.23.run" % os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    rc, output, recap = converge(package)
    assert rc == 0, output[-3000:]
    assert "VastAI driver 00.26.01.23 (firmware 03.02.00.08): 4 of 4 die(s) (VA16)" in output
    assert node.file("/srv/llmops/drivers/vastai_driver_install_00.26.01.23.run.installed").mode == 0o600
    assert sorted(name for name in node.check_output("ls %s/dev" % SIMULATION).split() if name.startswith("vacc")) == [
        "vacc0", "vacc1", "vacc2", "vacc3"]
    rc, output, recap = converge(package)
    assert rc == 0 and recap[VASTAI] == (0, 0), output[-3000:]
