"""accelerator_facts end to end in-process: sysfs trees on disk, nvidia-smi answers queued."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.llmops.inference.plugins.modules import accelerator_facts
from conftest import fixture_text
from simulated_pci import HGX_H100
from simulated_pci import write_sysfs as make_sysfs

QUERY_ARGV = [
    "/usr/bin/nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,memory.used,driver_version,pci.bus_id",
    "--format=csv,noheader,nounits",
]
# Every nvidia-smi call runs under coreutils' timeout (the module's tool_timeout, 60 s by default).
BOUNDED = ["/usr/bin/timeout", "--kill-after=5", "60"]
HEALTHY = (0, "".join("%d, Disabled, No, No\n" % index for index in range(8)), "")


@pytest.fixture
def commands(monkeypatch):
    """Queue (rc, stdout, stderr) answers; record each argv and environment asked for."""
    state = {"answers": [], "calls": [], "binaries": {"nvidia-smi": "/usr/bin/nvidia-smi", "timeout": "/usr/bin/timeout"}}

    def run_command(self, args, environ_update=None, **_):
        state["calls"].append((list(args), environ_update))
        return state["answers"].pop(0)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return state["binaries"].get(name)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    return state


def test_eight_gpu_server_with_driver(tmp_path, run_module, commands):
    commands["answers"] = [(0, fixture_text("nvidia_smi/h100-8gpu.csv"), ""), (0, "", ""), HEALTHY]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100), "min_count": 8})
    assert not failed and result["changed"] is False
    facts = result["ansible_facts"]["llmops_accelerators"]
    assert (facts["vendor"], facts["count"], facts["nvswitch_count"], facts["erdma_nic_count"]) == ("nvidia", 8, 4, 1)
    assert facts["driver"]["version"] == "550.54.15" and facts["driver"]["answered"] is True
    assert facts["vcpus"] == os.cpu_count()
    assert commands["calls"][0] == (BOUNDED + QUERY_ARGV, {"LC_ALL": "C", "LANG": "C"})
    assert commands["calls"][1][0] == BOUNDED + ["/usr/bin/nvidia-smi", "-L"]
    assert commands["calls"][2][0][4] == "--query-gpu=index,mig.mode.current,retired_pages.pending,remapped_rows.pending"
    assert facts["health"] == {"problems": [], "mig": [], "warnings": []}
    assert facts["devices"][0]["mig_mode"] == "Disabled" and facts["devices"][0]["remapped_rows_pending"] is False


def test_mig_devices_attached(tmp_path, run_module, commands):
    sysfs = make_sysfs(tmp_path, {"0000:07:00.0": ("0x10de", "0x20b0", "0x030200", "0x10de", "0x134f")})
    commands["answers"] = [
        (0, fixture_text("nvidia_smi/a100-mig.csv"), ""),
        (0, fixture_text("nvidia_smi/a100-mig-list.txt"), ""),
        (0, fixture_text("nvidia_smi/a100-mig-health.csv"), ""),
    ]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs})
    assert not failed
    assert result["accelerators"]["driver"]["mig_device_count"] == 3
    assert len(result["accelerators"]["devices"][0]["mig_devices"]) == 3
    # Reported, not refused: preflight refuses MIG unless the inventory allows it.
    assert result["accelerators"]["health"]["mig"] == ["GPU 0 (0000:07:00.0) has MIG mode enabled (3 MIG device(s))"]
    assert result["accelerators"]["health"]["problems"] == []


def test_broken_driver_is_reported_not_raised(tmp_path, run_module, commands):
    commands["answers"] = [(9, fixture_text("nvidia_smi/driver-unreachable.txt"), "")]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100)})
    assert not failed
    facts = result["accelerators"]
    assert facts["driver"]["state"] == "driver_unreachable" and facts["driver"]["rc"] == 9
    assert facts["count"] == 8 and facts["driver_count"] is None


def test_a_lost_gpu_plans_on_the_gpus_that_answered_and_names_the_lost_one(tmp_path, run_module, commands):
    # SIMULATED exit 15 (a GPU fell off the bus), from the captured line nvidia-smi prints.
    commands["answers"] = [(15, fixture_text("nvidia_smi/h100-gpu-lost.txt"), "")]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100)})
    assert not failed
    facts = result["accelerators"]
    assert facts["driver"]["state"] == "gpu_lost" and facts["driver"]["answered"] is False
    assert (facts["count"], facts["pci_count"], facts["driver_count"]) == (7, 8, 7)
    assert facts["driver"]["lost"] == [{"bus_id": "0000:2a:00.0", "reason": "GPU is lost. Reboot the system to recover this GPU"}]
    [problem] = facts["health"]["problems"]
    assert problem.startswith("nvidia-smi exit 15 (a GPU has fallen off the bus or is otherwise inaccessible): Unable to")
    assert "7 of the 8 GPU(s) on the PCI bus answered; GPU 0000:2a:00.0: GPU is lost." in problem


def test_a_wedged_nvidia_smi_is_cut_off_and_plans_on_nothing(tmp_path, run_module, commands):
    commands["answers"] = [(124, "", "")]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100), "tool_timeout": 20})
    assert not failed and commands["calls"][0][0][:3] == ["/usr/bin/timeout", "--kill-after=5", "20"]
    facts = result["accelerators"]
    assert facts["driver"]["state"] == "timeout" and facts["count"] == 0
    assert facts["health"]["problems"] == ["nvidia-smi exit 124 (nvidia-smi did not answer in time (a wedged GPU)); 0 of the 8 GPU(s) on the PCI bus answered"]


def test_pending_row_remaps_are_a_warning(tmp_path, run_module, commands):
    health = (0, "".join("%d, Disabled, No, %s\n" % (index, "Yes" if index == 3 else "No") for index in range(8)), "")
    commands["answers"] = [(0, fixture_text("nvidia_smi/h100-8gpu.csv"), ""), (0, "", ""), health]
    result, _failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100)})
    assert result["accelerators"]["health"]["warnings"] == [
        "GPU 3 (0000:5d:00.0) has memory row remaps pending: reset the GPU or reboot to apply them"]
    assert result["accelerators"]["count"] == 8


def test_broken_driver_fails_when_the_driver_is_required(tmp_path, run_module, commands):
    commands["answers"] = [(9, fixture_text("nvidia_smi/driver-unreachable.txt"), "")]
    result, failed = run_module(
        accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100), "require_driver": True}
    )
    assert failed
    assert "nvidia driver did not answer (state driver_unreachable)" in result["msg"]


def test_missing_nvidia_smi(tmp_path, run_module, commands):
    commands["binaries"] = {}
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100)})
    assert not failed and commands["calls"] == []
    assert result["accelerators"]["driver"]["state"] == "not_installed"


def test_garbled_nvidia_smi_output(tmp_path, run_module, commands):
    commands["answers"] = [(0, "Tesla T4, 15360\n", "")]
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": make_sysfs(tmp_path, HGX_H100)})
    assert not failed and result["accelerators"]["driver"]["state"] == "unparsable"


def test_too_few_accelerators_names_host_vendor_found_and_wanted(tmp_path, run_module, commands):
    commands["answers"] = [(0, fixture_text("nvidia_smi/rtx2080-1gpu.csv"), ""), (0, "", ""), (0, "0, [N/A], [N/A], [N/A]\n", "")]
    sysfs = make_sysfs(tmp_path, {"0000:0a:00.0": ("0x10de", "0x1e82", "0x030000", "0x10de", "0x12b0")})
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs, "min_count": 2})
    assert failed
    assert result["msg"].startswith("host ")
    assert "found 1 nvidia accelerator(s) (PCI 1, driver 1), wanted at least 2" in result["msg"]


def test_cpu_only_node(tmp_path, run_module, commands):
    sysfs = make_sysfs(tmp_path, {"0000:00:00.0": ("0x8086", "0x1237", "0x060000", "0x1af4", "0x1100")})
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs})
    assert not failed and commands["calls"] == []
    assert result["accelerators"]["vendor"] == "cpu" and result["accelerators"]["cpu_only"] is True


def test_driver_host_is_read_in_the_same_run_when_asked(tmp_path, run_module, commands):
    # No dpkg-query, no modinfo here: no packages, no module found; a bare sysfs tree is legacy boot.
    sysfs = make_sysfs(tmp_path, {"0000:00:00.0": ("0x8086", "0x1237", "0x060000", "0x1af4", "0x1100")})
    os.makedirs(os.path.join(sysfs, "class", "iommu", "dmar0"))
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cmdline").write_text("BOOT_IMAGE=/vmlinuz intel_iommu=on iommu=pt\n")
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs, "proc_path": str(proc), "driver_host": True})
    assert not failed
    host = result["ansible_facts"]["llmops_driver_host"]
    assert host == result["driver_host"]
    assert host["package_manager"] == "unknown" and host["packages"] == {}
    assert host["secure_boot"]["state"] == "disabled"
    assert sorted(host["modules"]) == ["erdma", "nouveau", "nvidia", "vastai_pci"]
    assert not host["modules"]["nvidia"]["loaded"]
    assert host["iommu"]["state"] == "passthrough"
    assert result["accelerators"]["vendor"] == "cpu"


def test_without_driver_host_no_driver_fact_is_set(tmp_path, run_module, commands):
    sysfs = make_sysfs(tmp_path, {"0000:00:00.0": ("0x8086", "0x1237", "0x060000", "0x1af4", "0x1100")})
    result, _failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs})
    assert "driver_host" not in result and "llmops_driver_host" not in result["ansible_facts"]


def test_wrong_vendor_fails(tmp_path, run_module, commands):
    sysfs = make_sysfs(tmp_path, {"0000:00:00.0": ("0x8086", "0x1237", "0x060000", "0x1af4", "0x1100")})
    result, failed = run_module(accelerator_facts.main, {"sysfs_path": sysfs, "vendor": "nvidia"})
    assert failed and "vendor is cpu, wanted nvidia" in result["msg"]


def vastai_node(tmp_path, dies=2, loaded=True, nodes=True):
    sysfs = make_sysfs(
        tmp_path / "sys",
        {"0000:%02x:00.0" % (0x3b + i): ("0x1ec6", "0x0100", "0x120000", "0x1ec6", "0x0014") for i in range(dies)},
    )
    if loaded:
        (tmp_path / "sys" / "module" / "vastai_pci").mkdir(parents=True)
    dev = tmp_path / "dev"
    dev.mkdir()
    if nodes:
        for index in range(dies):
            (dev / ("vacc%d" % index)).write_text("")
        (dev / "vastai0_version").write_text(fixture_text("vastai/vastai0_version"))
    return {"sysfs_path": sysfs, "dev_path": str(dev)}


def test_vastai_with_driver_and_vasmi(tmp_path, run_module, commands):
    commands["binaries"] = {"vasmi": "/opt/vastai/bin/vasmi"}
    commands["answers"] = [(0, fixture_text("vastai/vasmi-summary.json"), "")]
    result, failed = run_module(accelerator_facts.main, dict(vastai_node(tmp_path), min_count=2, require_driver=True))
    assert not failed
    facts = result["accelerators"]
    assert (facts["vendor"], facts["count"], facts["models"]) == ("vastai", 2, ["VA1L"])
    assert facts["driver"]["version"] == "00.26.01.23"
    assert facts["memory_total_mib"] == 16384
    assert commands["calls"][0][0] == ["/opt/vastai/bin/vasmi", "summary", "--display-format=json"]


def test_vastai_without_driver(tmp_path, run_module, commands):
    result, failed = run_module(accelerator_facts.main, vastai_node(tmp_path, loaded=False, nodes=False))
    assert not failed
    facts = result["accelerators"]
    assert facts["driver"]["state"] == "not_installed" and facts["count"] == 2 and facts["models"] == ["VA1L"]


def test_vastai_module_loaded_without_device_nodes(tmp_path, run_module, commands):
    result, failed = run_module(accelerator_facts.main, vastai_node(tmp_path, nodes=False))
    assert not failed and result["accelerators"]["driver"]["state"] == "error"
