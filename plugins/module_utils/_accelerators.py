# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accelerator discovery: PCI sysfs, nvidia-smi and VastAI driver outputs.

Parsers and decisions are pure functions, tested alone with captured outputs; read_pci_devices
reads a sysfs tree (the unit tests give it a simulated one); the accelerator_facts module runs
the vendor tools.
"""

from __future__ import annotations

import json
import os
import re

NVIDIA_VENDOR = "0x10de"
VASTAI_VENDOR = "0x1ec6"
# Device 0x0100 of Vastai Technologies is the AI/inference die ("SV100" family).
VASTAI_AI_DIE_DEVICE = "0x0100"
ERDMA_VENDOR_DEVICE = ("0x1ded", "0x107f")
# PCI classes: VGA and 3D controllers are GPUs; NVSwitch shows as an "other bridge".
GPU_CLASS_PREFIXES = ("0x0300", "0x0302")
BRIDGE_OTHER_CLASS_PREFIX = "0x0680"
# Card model from the subsystem device id (subsystem vendor 0x1ec6), per pci.ids (2026.08.22).
VASTAI_CARD_MODELS = {
    "0x0010": "VA1V",
    "0x0011": "VA1A",
    "0x0012": "VA1-16G",
    "0x0013": "VA1E",
    "0x0014": "VA1L",
    "0x0015": "VA1-32G",
    "0x0020": "VA10-32G",
    "0x0021": "VA12-32G",
    "0x0022": "VA16",
    "0x0023": "VA10-64G",
    "0x0024": "VA10L",
    "0x0025": "VA12-64G",
    "0x0026": "VA12-128G",
    "0x0040": "VA1M",
    "0x0041": "VA1U",
    "0x0050": "VAM",
}
# Video (VE1*, 0x0030-0x0036) and VR (VR1*, 0x003a-0x003f) cards share device 0x0100 but are
# not inference dies: they are not counted as accelerators.
VASTAI_NON_INFERENCE_SUBSYSTEMS = frozenset(["0x%04x" % number for number in list(range(0x30, 0x37)) + list(range(0x3A, 0x40))])

NVIDIA_SMI_QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "memory.used", "driver_version", "pci.bus_id")
# Health, asked separately: a driver too old for a field answers exit 2, and then only the
# health is unknown.
NVIDIA_SMI_HEALTH_FIELDS = ("index", "mig.mode.current", "retired_pages.pending", "remapped_rows.pending")
NVIDIA_DRIVER_UNREACHABLE_RC = 9
# What coreutils' timeout exits with when the command ran out of time (a wedged GPU can hang
# nvidia-smi).
TIMED_OUT_RC = 124
# nvidia-smi's exit codes (its manual page), named in reports.
NVIDIA_SMI_EXIT_CODES = {
    2: "a bad argument", 3: "the operation is not supported", 4: "insufficient permissions",
    6: "the object was not found", 8: "a GPU's external power cables are not attached",
    9: "the NVIDIA driver is not loaded", 10: "an interrupt problem with a GPU",
    12: "the NVML library was not found", 13: "a function is missing from NVML",
    14: "a GPU's infoROM is corrupted", 15: "a GPU has fallen off the bus or is otherwise inaccessible",
    18: "the driver and its library differ in version (reboot onto the new driver)",
    TIMED_OUT_RC: "nvidia-smi did not answer in time (a wedged GPU)", 137: "nvidia-smi did not answer in time and was killed",
    255: "another or an internal driver error",
}
# coreutils' timeout exits 137 when it had to kill the command after --kill-after.
KILLED_RC = 137
# A GPU that fell off the bus, or an nvidia-smi that hangs: no driver install repairs these, so
# the plan counts only the GPUs that answered and preflight refuses the node with the evidence.
# Any other failure (no driver, not loaded, awaiting a reboot, a half-installed library) the
# drivers phase may repair: until then the plan counts the GPUs on the PCI bus.
NVIDIA_SICK_STATES = ("gpu_lost", "timeout")
_LOST_GPU_LINE = re.compile(r"^Unable to determine the device handle for GPU\s*(?P<bus_id>[0-9A-Fa-f]+:[0-9A-Fa-f:.]+):\s*(?P<reason>.+?)\s*$")
_NVIDIA_UNREACHABLE_TEXT = "couldn't communicate with the nvidia driver"
_NOT_AVAILABLE = ("[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]", "")
_MIG_LINE = re.compile(r"^\s+MIG\s+(?P<profile>\S+)\s+Device\s+(?P<index>\d+):\s+\(UUID:\s*(?P<uuid>[^)]+)\)")
_GPU_LINE = re.compile(r"^GPU\s+(?P<index>\d+):\s+(?P<name>.+?)\s+\(UUID:\s*(?P<uuid>[^)]+)\)")
_VASTAI_VERSION_FIELD = re.compile(r"(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>[0-9][0-9A-Za-z._-]*)")


def read_pci_devices(sysfs_root):
    """List PCI devices from <sysfs_root>/bus/pci/devices with their ids, lowercase hex strings."""
    devices_dir = os.path.join(sysfs_root, "bus", "pci", "devices")
    if not os.path.isdir(devices_dir):
        return []
    devices = []
    for address in sorted(os.listdir(devices_dir)):
        device = {"address": address}
        for field in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device"):
            try:
                with open(os.path.join(devices_dir, address, field)) as handle:
                    device[field] = handle.read().strip().lower()
            except (IOError, OSError):
                device[field] = None
        devices.append(device)
    return devices


def classify_pci_devices(devices):
    """Sort PCI devices into the accelerators and fabrics this collection cares about."""
    found = {"nvidia_gpus": [], "nvswitches": [], "vastai_dies": [], "erdma_nics": []}
    for device in devices:
        vendor, klass = device.get("vendor"), device.get("class") or ""
        if vendor == NVIDIA_VENDOR and klass.startswith(GPU_CLASS_PREFIXES):
            found["nvidia_gpus"].append({"bus_id": device["address"], "device_id": device.get("device")})
        elif vendor == NVIDIA_VENDOR and klass.startswith(BRIDGE_OTHER_CLASS_PREFIX):
            found["nvswitches"].append({"bus_id": device["address"], "device_id": device.get("device")})
        elif vendor == VASTAI_VENDOR and device.get("device") == VASTAI_AI_DIE_DEVICE:
            if device.get("subsystem_vendor") == VASTAI_VENDOR and device.get("subsystem_device") in VASTAI_NON_INFERENCE_SUBSYSTEMS:
                continue
            model = None
            if device.get("subsystem_vendor") == VASTAI_VENDOR:
                model = VASTAI_CARD_MODELS.get(device.get("subsystem_device"))
            found["vastai_dies"].append(
                {"bus_id": device["address"], "card_model": model, "subsystem_device": device.get("subsystem_device")}
            )
        elif (vendor, device.get("device")) == ERDMA_VENDOR_DEVICE:
            found["erdma_nics"].append({"bus_id": device["address"]})
    return found


def _value(text):
    text = text.strip()
    return None if text in _NOT_AVAILABLE else text


def _int_or_none(text):
    value = _value(text)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_lost_gpus(text):
    """The GPUs nvidia-smi could not reach ("Unable to determine the device handle for GPU
    0000:2A:00.0: GPU is lost. ..."): [{bus_id, reason}]."""
    lost = []
    for line in text.splitlines():
        match = _LOST_GPU_LINE.match(line.strip())
        if match:
            lost.append({"bus_id": normalize_bus_id(match["bus_id"]), "reason": " ".join(match["reason"].split())})
    return lost


def parse_nvidia_smi_gpus(stdout):
    """Parse `nvidia-smi --query-gpu=<NVIDIA_SMI_QUERY_FIELDS> --format=csv,noheader,nounits`.

    A GPU nvidia-smi could not reach prints a line of its own instead of a row (see
    parse_lost_gpus); it is skipped here.
    """
    gpus = []
    for line_number, line in enumerate(stdout.splitlines(), start=1):
        if not line.strip() or _LOST_GPU_LINE.match(line.strip()):
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(NVIDIA_SMI_QUERY_FIELDS):
            raise ValueError(
                "nvidia-smi line %d has %d fields, expected %d: %r"
                % (line_number, len(cells), len(NVIDIA_SMI_QUERY_FIELDS), line)
            )
        row = dict(zip(NVIDIA_SMI_QUERY_FIELDS, cells))
        gpus.append(
            {
                "index": _int_or_none(row["index"]),
                "uuid": _value(row["uuid"]),
                "name": _value(row["name"]),
                "memory_total_mib": _int_or_none(row["memory.total"]),
                "memory_used_mib": _int_or_none(row["memory.used"]),
                "driver_version": _value(row["driver_version"]),
                "bus_id": normalize_bus_id(_value(row["pci.bus_id"])),
            }
        )
    return gpus


def normalize_bus_id(bus_id):
    """nvidia-smi says 00000000:18:00.0, sysfs says 0000:18:00.0: compare as the latter."""
    if not bus_id:
        return bus_id
    domain, _separator, rest = bus_id.lower().partition(":")
    return "%04x:%s" % (int(domain, 16), rest) if rest else bus_id.lower()


def parse_nvidia_smi_list(stdout):
    """Parse `nvidia-smi -L`: GPUs with the MIG devices carved out of each."""
    gpus, current = [], None
    for line in stdout.splitlines():
        gpu = _GPU_LINE.match(line)
        if gpu:
            current = {"index": int(gpu["index"]), "name": gpu["name"], "uuid": gpu["uuid"].strip(), "mig_devices": []}
            gpus.append(current)
            continue
        mig = _MIG_LINE.match(line)
        if mig and current is not None:
            current["mig_devices"].append({"profile": mig["profile"], "index": int(mig["index"]), "uuid": mig["uuid"].strip()})
    return gpus


def parse_nvidia_smi_health(stdout):
    """Parse `nvidia-smi --query-gpu=<NVIDIA_SMI_HEALTH_FIELDS> --format=csv,noheader,nounits`:
    {index: {mig_mode, retired_pages_pending, remapped_rows_pending}}, each None where the GPU
    does not say ([N/A] on GPUs without MIG or row remapping)."""
    def pending(text):
        value = _value(text)
        return None if value is None else value.lower() == "yes"

    health = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(NVIDIA_SMI_HEALTH_FIELDS) or _int_or_none(cells[0]) is None:
            continue
        health[_int_or_none(cells[0])] = {"mig_mode": _value(cells[1]), "retired_pages_pending": pending(cells[2]),
                                          "remapped_rows_pending": pending(cells[3])}
    return health


def nvidia_smi_failure(rc, stdout, stderr):
    """Name the state behind a failed nvidia-smi run, for a report rather than a traceback:
    (state, message), the message with the exit code's meaning and what nvidia-smi printed."""
    text = ("%s\n%s" % (stdout, stderr)).strip()
    if rc == NVIDIA_DRIVER_UNREACHABLE_RC or _NVIDIA_UNREACHABLE_TEXT in text.lower():
        state = "driver_unreachable"
    elif rc == 18 or "driver/library version mismatch" in text.lower():
        state = "driver_library_mismatch"
    elif rc in (TIMED_OUT_RC, KILLED_RC):
        state = "timeout"
    elif rc == 15 or parse_lost_gpus(text):
        state = "gpu_lost"
    else:
        state = "error"
    meaning = NVIDIA_SMI_EXIT_CODES.get(rc, "an unknown exit code")
    evidence = [line for line in text.splitlines() if line.strip() and not line[:1].isdigit()][:5]
    return state, "nvidia-smi exit %s (%s)%s" % (rc, meaning, ": " + " / ".join(evidence) if evidence else "")


def nvidia_query_answer(rc, stdout, stderr):
    """The driver's answer from the `--query-gpu=<NVIDIA_SMI_QUERY_FIELDS>` run: state ok with
    its GPUs, or the failure's state and message. On exit 15 nvidia-smi still prints the GPUs
    that answered: they are the devices, and the ones it could not reach are `lost`."""
    try:
        gpus = parse_nvidia_smi_gpus(stdout)
    except ValueError as error:
        if rc == 0:
            return {"state": "unparsable", "answered": False, "devices": [], "message": str(error)}
        gpus = []
    if rc != 0:
        state, message = nvidia_smi_failure(rc, stdout, stderr)
        return {"state": state, "answered": False, "devices": gpus, "message": message, "rc": rc,
                "lost": parse_lost_gpus("%s\n%s" % (stdout, stderr))}
    versions = sorted({gpu["driver_version"] for gpu in gpus if gpu["driver_version"]})
    return {"state": "ok", "answered": True, "devices": gpus,
            "version": versions[0] if len(versions) == 1 else ",".join(versions) or None, "message": ""}


def add_nvidia_details(answer, listing, health):
    """Each answering GPU's MIG devices (from the `-L` run) and health (from the
    NVIDIA_SMI_HEALTH_FIELDS run); listing and health are (rc, stdout), a failed run adds none."""
    mig_by_index = {gpu["index"]: gpu["mig_devices"] for gpu in parse_nvidia_smi_list(listing[1])} if listing[0] == 0 else {}
    health_by_index = parse_nvidia_smi_health(health[1]) if health[0] == 0 else {}
    for gpu in answer["devices"]:
        gpu["mig_devices"] = mig_by_index.get(gpu["index"], [])
        gpu.update(health_by_index.get(gpu["index"], {"mig_mode": None, "retired_pages_pending": None, "remapped_rows_pending": None}))
    answer["mig_device_count"] = sum(len(gpu["mig_devices"]) for gpu in answer["devices"])
    return answer


def nvidia_health(driver, pci_count):
    """What makes a node's NVIDIA GPUs unfit to plan on, each with its evidence: {problems,
    mig, warnings}. problems: a lost GPU or a timeout (no driver install repairs them); mig:
    GPUs in MIG mode (refused unless the inventory allows MIG); warnings: pending row remaps
    or retired pages (a GPU reset applies them).

    driver: query_nvidia's answer, None on a node without NVIDIA GPUs.
    """
    health = {"problems": [], "mig": [], "warnings": []}
    if not driver:
        return health
    if driver.get("state") in NVIDIA_SICK_STATES:
        health["problems"].append("%s; %d of the %d GPU(s) on the PCI bus answered%s" % (
            driver.get("message") or driver.get("state"), len(driver.get("devices") or []), pci_count,
            "".join("; GPU %s: %s" % (gpu["bus_id"], gpu["reason"]) for gpu in driver.get("lost") or [])))
    for gpu in driver.get("devices") or []:
        name = "GPU %s (%s)" % (gpu.get("index"), gpu.get("bus_id"))
        if gpu.get("mig_mode") == "Enabled":
            health["mig"].append("%s has MIG mode enabled (%d MIG device(s))" % (name, len(gpu.get("mig_devices") or [])))
        if gpu.get("remapped_rows_pending"):
            health["warnings"].append("%s has memory row remaps pending: reset the GPU or reboot to apply them" % name)
        if gpu.get("retired_pages_pending"):
            health["warnings"].append("%s has retired pages pending: reset the GPU or reboot to apply them" % name)
    return health


def parse_vastai_version(text):
    """Parse /dev/vastai<N>_version ("Driver: 00.26.01.23 ..."): lower-case keys to versions."""
    return {match["key"].strip().lower().replace(" ", "_"): match["value"] for match in _VASTAI_VERSION_FIELD.finditer(text)}


def parse_vasmi_memory(text):
    """Per-die memory from vasmi JSON output ({"elem": [{"pci_bus": .., "vals": {"Physical": ..}}]}).

    The vendor does not document this format, so anything unexpected yields no entry
    instead of an error.
    """
    try:
        document = json.loads(text)
    except ValueError:
        return []
    elements = document.get("elem") if isinstance(document, dict) else None
    memory = []
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        physical = (element.get("vals") or {}).get("Physical") or {}
        value = physical.get("value") if isinstance(physical, dict) else None
        match = re.match(r"^\s*(\d+)\s*MiB", value or "")
        memory.append({"bus_id": element.get("pci_bus"), "memory_total_mib": int(match.group(1)) if match else None})
    return memory


def summarize(pci, nvidia=None, vastai=None):
    """Combine what PCI and the drivers said into the facts every role decides from.

    pci: classify_pci_devices() output. nvidia / vastai: the driver's answer, or None when
    that vendor has no device. The usable count is what the driver sees when it answers,
    otherwise what PCI shows (drivers not installed, not loaded or broken yet); a lost GPU or
    an nvidia-smi that timed out counts only the GPUs that answered.
    """
    nvidia_driver = nvidia if pci["nvidia_gpus"] else None
    if pci["nvidia_gpus"]:
        vendor, pci_devices, driver = "nvidia", pci["nvidia_gpus"], nvidia
    elif pci["vastai_dies"]:
        vendor, pci_devices, driver = "vastai", pci["vastai_dies"], vastai
    else:
        vendor, pci_devices, driver = "cpu", [], None
    driver = driver or {"state": "absent" if vendor == "cpu" else "not_installed", "answered": False, "devices": []}
    # A sick NVIDIA node is planned on the GPUs that answered, never on the PCI count.
    counts_answers = driver["answered"] or (vendor == "nvidia" and driver["state"] in NVIDIA_SICK_STATES)
    devices = driver["devices"] if counts_answers else pci_devices
    models = sorted({d.get("name") or d.get("card_model") for d in devices if d.get("name") or d.get("card_model")})
    memories = [d["memory_total_mib"] for d in devices if d.get("memory_total_mib")]
    return {
        "vendor": vendor,
        "count": len(devices),
        "pci_count": len(pci_devices),
        "pci_device_ids": sorted({d["device_id"] for d in pci_devices if d.get("device_id")}),
        "driver_count": len(driver["devices"]) if counts_answers else None,
        "models": models,
        "memory_total_mib": min(memories) if memories else None,
        "devices": devices,
        "driver": {key: value for key, value in driver.items() if key != "devices"},
        "health": nvidia_health(nvidia_driver, len(pci_devices)),
        "nvswitch_count": len(pci["nvswitches"]),
        "erdma_nic_count": len(pci["erdma_nics"]),
        "cpu_only": vendor == "cpu",
    }
