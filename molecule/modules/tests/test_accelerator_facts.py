"""accelerator_facts on each host's SIMULATED hardware (PCI tree + captured tool output)."""

from __future__ import annotations

import pytest

SIMULATED = {"sysfs_path": "/opt/sim/sys", "dev_path": "/opt/sim/dev"}
# What each host's simulation must yield (molecule.yml host_vars pick the simulations).
EXPECTED = {
    "llmops-modules-head-1": {"vendor": "nvidia", "count": 2, "driver_state": "driver_unreachable", "answered": False},
    "llmops-modules-worker-1": {"vendor": "nvidia", "count": 8, "driver_state": "ok", "answered": True},
    "llmops-modules-worker-2": {"vendor": "vastai", "count": 4, "driver_state": "ok", "answered": True},
}


def module_args(**extra):
    return " ".join("%s=%s" % item for item in dict(SIMULATED, **extra).items())


@pytest.mark.parametrize("check_mode", [False, True])
def test_facts_match_the_simulated_hardware(host, module, check_mode):
    expected = EXPECTED[host.backend.get_hostname()]
    result = module("llmops.inference.accelerator_facts", module_args(), check=check_mode)
    assert not result.get("failed"), result
    facts = result["ansible_facts"]["llmops_accelerators"]
    assert result["changed"] is False
    assert (facts["vendor"], facts["count"]) == (expected["vendor"], expected["count"])
    assert facts["driver"]["state"] == expected["driver_state"]
    assert facts["driver"]["answered"] is expected["answered"]


def test_vendor_specific_details(host, module):
    name = host.backend.get_hostname()
    facts = module("llmops.inference.accelerator_facts", module_args())["accelerators"]
    if name == "llmops-modules-worker-1":
        assert facts["nvswitch_count"] == 4 and facts["erdma_nic_count"] == 1
        assert facts["models"] == ["NVIDIA H100 80GB HBM3"] and facts["driver"]["version"] == "550.54.15"
    elif name == "llmops-modules-worker-2":
        assert facts["models"] == ["VA16"] and facts["driver"]["version"] == "00.26.01.23"
        assert [device["device_node"] for device in facts["devices"]] == ["/opt/sim/dev/vacc%d" % i for i in range(4)]
    else:
        assert facts["driver_count"] is None and "couldn't communicate" in facts["driver"]["message"]


def test_min_count_failure_names_host_vendor_found_and_wanted(host, module):
    expected = EXPECTED[host.backend.get_hostname()]
    result = module("llmops.inference.accelerator_facts", module_args(min_count=16))
    assert result["failed"] is True
    message = result["msg"]
    assert message.startswith("host %s: " % host.backend.get_hostname())
    assert "found %d %s accelerator(s)" % (expected["count"], expected["vendor"]) in message
    assert "wanted at least 16" in message


def test_real_sysfs_of_a_container_is_a_cpu_only_node(module):
    facts = module("llmops.inference.accelerator_facts")["accelerators"]
    # The machine running these tests has no accelerator: the real /sys says CPU-only.
    assert facts["vendor"] == "cpu" and facts["cpu_only"] is True
