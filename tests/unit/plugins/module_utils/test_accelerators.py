"""Parsers and classification of accelerator discovery, driven by captured outputs."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _accelerators as acc
from conftest import fixture_text
from simulated_pci import HGX_H100
from simulated_pci import write_sysfs as make_sysfs


def test_hgx_server_pci_classification(tmp_path):
    found = acc.classify_pci_devices(acc.read_pci_devices(make_sysfs(tmp_path, HGX_H100)))
    assert len(found["nvidia_gpus"]) == 8
    assert len(found["nvswitches"]) == 4
    assert [nic["bus_id"] for nic in found["erdma_nics"]] == ["0000:01:00.0"]
    assert found["vastai_dies"] == []


@pytest.mark.parametrize(
    "subsystem_device, model",
    [("0x0022", "VA16"), ("0x0014", "VA1L"), ("0x0024", "VA10L"), ("0x0023", "VA10-64G"), ("0x0025", "VA12-64G"),
     ("0x0026", "VA12-128G"), ("0x0099", None)],
)
def test_vastai_card_model_from_subsystem(tmp_path, subsystem_device, model):
    sysfs = make_sysfs(tmp_path, {"0000:3b:00.0": ("0x1ec6", "0x0100", "0x120000", "0x1ec6", subsystem_device)})
    dies = acc.classify_pci_devices(acc.read_pci_devices(sysfs))["vastai_dies"]
    assert dies == [{"bus_id": "0000:3b:00.0", "card_model": model, "subsystem_device": subsystem_device}]


@pytest.mark.parametrize("subsystem_device", ["0x0030", "0x0036", "0x003a", "0x003f"])
def test_video_and_vr_cards_are_not_inference_dies(tmp_path, subsystem_device):
    # VE1 video (0x0030-0x0036) and VR (0x003a-0x003f) cards share device 0x0100 (pci.ids).
    sysfs = make_sysfs(tmp_path, {"0000:3b:00.0": ("0x1ec6", "0x0100", "0x120000", "0x1ec6", "0x0022"),
                                  "0000:5e:00.0": ("0x1ec6", "0x0100", "0x048000", "0x1ec6", subsystem_device)})
    dies = acc.classify_pci_devices(acc.read_pci_devices(sysfs))["vastai_dies"]
    assert [die["bus_id"] for die in dies] == ["0000:3b:00.0"]


def test_device_0100_of_another_vendor_is_not_vastai(tmp_path):
    # The vendor docs' `lspci -d:0100` matches any vendor's device 0x0100: we must not.
    sysfs = make_sysfs(tmp_path, {"0000:05:00.0": ("0x8086", "0x0100", "0x060000", "0x8086", "0x0000")})
    assert acc.classify_pci_devices(acc.read_pci_devices(sysfs))["vastai_dies"] == []


def test_missing_sysfs_means_no_devices(tmp_path):
    assert acc.read_pci_devices(str(tmp_path / "absent")) == []


def test_parse_real_rtx2080_line():
    (gpu,) = acc.parse_nvidia_smi_gpus(fixture_text("nvidia_smi/rtx2080-1gpu.csv"))
    assert gpu == {
        "index": 0,
        "uuid": "GPU-22b2c6ac-2d49-4863-197c-9c469071178a",
        "name": "GeForce RTX 2080",
        "memory_total_mib": 7979,
        "memory_used_mib": 55,
        "driver_version": "440.64",
        "bus_id": "0000:0a:00.0",
    }


def test_parse_eight_gpu_server():
    gpus = acc.parse_nvidia_smi_gpus(fixture_text("nvidia_smi/h100-8gpu.csv"))
    assert [gpu["index"] for gpu in gpus] == list(range(8))
    assert {gpu["name"] for gpu in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {gpu["memory_total_mib"] for gpu in gpus} == {81559}
    assert gpus[7]["bus_id"] == "0000:db:00.0"


def test_not_available_fields_become_none():
    (gpu,) = acc.parse_nvidia_smi_gpus(fixture_text("nvidia_smi/a100-mig.csv"))
    assert gpu["memory_used_mib"] is None
    assert gpu["memory_total_mib"] == 40960


def test_wrong_field_count_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="line 1 has 3 fields"):
        acc.parse_nvidia_smi_gpus("0, GPU-x, Tesla T4\n")


def test_mig_devices_listed_per_gpu():
    (gpu,) = acc.parse_nvidia_smi_list(fixture_text("nvidia_smi/a100-mig-list.txt"))
    assert gpu["name"] == "NVIDIA A100-SXM4-40GB"
    assert [mig["profile"] for mig in gpu["mig_devices"]] == ["3g.20gb", "2g.10gb", "1g.5gb"]
    assert gpu["mig_devices"][0]["uuid"] == "MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f"


@pytest.mark.parametrize(
    "rc, fixture, state",
    [
        (9, "nvidia_smi/driver-unreachable.txt", "driver_unreachable"),
        (18, "nvidia_smi/library-mismatch.txt", "driver_library_mismatch"),
        (15, "nvidia_smi/h100-gpu-lost.txt", "gpu_lost"),
    ],
)
def test_failure_states(rc, fixture, state):
    found_state, message = acc.nvidia_smi_failure(rc, fixture_text(fixture), "")
    assert found_state == state
    assert message.startswith("nvidia-smi exit %d (%s)" % (rc, acc.NVIDIA_SMI_EXIT_CODES[rc]))


def test_unknown_failure_keeps_the_text_and_names_the_exit_code():
    assert acc.nvidia_smi_failure(2, "", "Invalid combination of input arguments") == (
        "error",
        "nvidia-smi exit 2 (a bad argument): Invalid combination of input arguments",
    )
    assert acc.nvidia_smi_failure(124, "", "") == ("timeout", "nvidia-smi exit 124 (nvidia-smi did not answer in time (a wedged GPU))")
    assert acc.nvidia_smi_failure(137, "", "")[0] == "timeout"  # killed after --kill-after


def test_a_lost_gpu_line_is_not_a_row():
    text = fixture_text("nvidia_smi/h100-gpu-lost.txt")
    assert [gpu["index"] for gpu in acc.parse_nvidia_smi_gpus(text)] == [0, 2, 3, 4, 5, 6, 7]
    assert acc.parse_lost_gpus(text) == [{"bus_id": "0000:2a:00.0", "reason": "GPU is lost. Reboot the system to recover this GPU"}]
    assert acc.parse_lost_gpus(fixture_text("nvidia_smi/h100-8gpu.csv")) == []


def test_health_fields_read_yes_no_and_not_available():
    assert acc.parse_nvidia_smi_health("0, Enabled, [N/A], No\n1, Disabled, Yes, [N/A]\ngarbage\n") == {
        0: {"mig_mode": "Enabled", "retired_pages_pending": None, "remapped_rows_pending": False},
        1: {"mig_mode": "Disabled", "retired_pages_pending": True, "remapped_rows_pending": None},
    }


def test_a_driver_the_drivers_phase_repairs_is_no_health_problem():
    for state in ("not_installed", "driver_unreachable", "driver_library_mismatch", "error", "unparsable"):
        assert acc.nvidia_health({"state": state, "answered": False, "devices": []}, 8) == {"problems": [], "mig": [], "warnings": []}
    assert acc.nvidia_health(None, 0) == {"problems": [], "mig": [], "warnings": []}


def test_vastai_version_file():
    assert acc.parse_vastai_version(fixture_text("vastai/vastai0_version")) == {
        "driver": "00.26.01.23",
        "firmware": "03.02.00.08",
    }


def test_vasmi_memory_json_and_garbage():
    assert acc.parse_vasmi_memory(fixture_text("vastai/vasmi-summary.json")) == [
        {"bus_id": "0000:3b:00.0", "memory_total_mib": 16384},
        {"bus_id": "0000:3c:00.0", "memory_total_mib": 16384},
    ]
    assert acc.parse_vasmi_memory("vasmi: unknown option") == []
    assert acc.parse_vasmi_memory('{"elem": [{"vals": {"Physical": "odd"}}]}') == [{"bus_id": None, "memory_total_mib": None}]


def empty_pci():
    return {"nvidia_gpus": [], "nvswitches": [], "vastai_dies": [], "erdma_nics": []}


def test_summary_of_a_cpu_only_node():
    facts = acc.summarize(empty_pci())
    assert facts["vendor"] == "cpu" and facts["cpu_only"] is True
    assert facts["count"] == 0 and facts["driver"]["state"] == "absent"


def test_summary_counts_pci_when_the_driver_is_down():
    pci = empty_pci()
    pci["nvidia_gpus"] = [{"bus_id": "0000:%02x:00.0" % i, "device_id": "0x2330"} for i in range(8)]
    down = {"state": "driver_unreachable", "answered": False, "devices": [], "message": "rc 9"}
    facts = acc.summarize(pci, nvidia=down)
    assert (facts["vendor"], facts["count"], facts["pci_count"], facts["driver_count"]) == ("nvidia", 8, 8, None)
    assert facts["driver"] == {"state": "driver_unreachable", "answered": False, "message": "rc 9"}


def test_summary_prefers_the_driver_count():
    pci = empty_pci()
    pci["nvidia_gpus"] = [{"bus_id": "0000:%02x:00.0" % i, "device_id": "0x2330"} for i in range(8)]
    gpus = acc.parse_nvidia_smi_gpus(fixture_text("nvidia_smi/h100-8gpu.csv"))[:7]  # one fell off the bus
    facts = acc.summarize(pci, nvidia={"state": "ok", "answered": True, "devices": gpus, "version": "550.54.15"})
    assert (facts["count"], facts["pci_count"], facts["driver_count"]) == (7, 8, 7)
    assert facts["models"] == ["NVIDIA H100 80GB HBM3"]
    assert facts["memory_total_mib"] == 81559
