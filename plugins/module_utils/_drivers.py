# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver decisions for the drivers phase: which packages at which versions, per OS, branch
and GPU generation; what a node's firmware and kernel say (Secure Boot, IOMMU, modules); and
what the package managers and vendor tools print. Pure functions, unit-tested with captured
outputs; the driver_facts module and the drivers filters call them.
"""

from __future__ import annotations

import re

# NVIDIA driver branches the CUDA repositories publish (production and new-feature branches).
# A branch outside this list is refused in preflight: a typo must not reach the package manager.
NVIDIA_BRANCHES = ("535", "550", "560", "565", "570", "575", "580", "590")
# From 580 on, a pinning package (installed first) holds the branch and the driver and fabric
# manager packages lose the branch from their names on NVIDIA's repository.
NVIDIA_PINNED_FROM = 580
# 580 is the last branch that supports Maxwell, Pascal and Volta GPUs.
NVIDIA_LAST_PRE_TURING_BRANCH = 580

# GPU generation from the PCI device id, as far as the kernel module type depends on it. Ids
# rise with each generation: the open modules' list starts at TU102 (0x1e02); Grace Hopper is
# 0x2342-0x234f; Blackwell starts at 0x2900 (B200 0x2901, B300 0x3182).
_NVIDIA_GENERATIONS = (
    (0x0000, 0x1E00, "pre-turing"),
    (0x1E00, 0x2342, "turing-to-hopper"),
    (0x2342, 0x2350, "grace-hopper"),
    (0x2350, 0x2900, "turing-to-hopper"),
    (0x2900, 0x10000, "blackwell"),
)
OPEN_REQUIRED = ("grace-hopper", "blackwell")
OPEN_IMPOSSIBLE = ("pre-turing",)

# Where each supported OS gets NVIDIA's packages: the CUDA repository's folder name and key.
_CUDA_REPOSITORY_OS = {
    ("debian", "12"): ("debian12", "apt"),
    ("ubuntu", "22"): ("ubuntu2204", "apt"),
    ("ubuntu", "24"): ("ubuntu2404", "apt"),
}
CUDA_REPOSITORY_BASE = "https://developer.download.nvidia.com/compute/cuda/repos"
CUDA_REPOSITORY_KEYS = {"apt": "3bf863cc.pub"}
_REPOSITORY_ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "sbsa"}
SUPPORTED_OS_TEXT = "Debian 12, Ubuntu 22.04 or 24.04"

SECURE_BOOT_EFIVAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def gpu_generation(device_id):
    """Generation name of an NVIDIA GPU from its PCI device id ("0x2330" or 0x2330)."""
    try:
        number = int(device_id, 16) if isinstance(device_id, str) else int(device_id)
    except (TypeError, ValueError):
        return "unknown"
    for low, high, name in _NVIDIA_GENERATIONS:
        if low <= number < high:
            return name
    return "unknown"


def kernel_module_type(device_ids, override="auto"):
    """(open or proprietary, reason, problem) for the node's GPUs; problem is None when fine."""
    generations = sorted({gpu_generation(device_id) for device_id in device_ids})
    needs_open = [name for name in generations if name in OPEN_REQUIRED]
    cannot_open = [name for name in generations if name in OPEN_IMPOSSIBLE]
    if needs_open and cannot_open:
        return None, "", "the node mixes %s GPUs (open modules only) with %s GPUs (proprietary only)" % (
            needs_open[0], cannot_open[0])
    if override == "open" and cannot_open:
        return None, "", "open kernel modules do not support %s GPUs (Maxwell, Pascal, Volta)" % cannot_open[0]
    if override == "proprietary" and needs_open:
        return None, "", "%s GPUs need the open kernel modules" % needs_open[0]
    if override in ("open", "proprietary"):
        return override, "set by nvidia_driver_kernel_module_type", None
    if cannot_open:
        return "proprietary", "%s GPUs cannot run the open modules" % cannot_open[0], None
    if needs_open:
        return "open", "%s GPUs need the open modules" % needs_open[0], None
    return "open", "NVIDIA's default since branch 560 for Turing and newer", None


def os_key(distribution, major_version):
    """(distribution key, major) of a supported node, e.g. ('ubuntu', '24'), or None."""
    name = (distribution or "").lower().replace(" ", "")
    key = (name, str(major_version))
    return key if key in _CUDA_REPOSITORY_OS else None


def os_text(distribution, version):
    return "%s %s" % (distribution or "an unknown OS", version or "")


def upstream_version(version):
    """580.95.05 from 580.95.05-1, 580.95.05-0ubuntu1 or 1:580.95.05-1."""
    version = (version or "").split(":", 1)[-1]
    return version.split("-", 1)[0]


def nvidia_package_plan(distribution, major_version, architecture, kernel_release, branch, module_type,
                        nvswitch, repository_url=""):
    """Which repository and packages an NVIDIA node needs, before any version is chosen.

    Returns repository (url, key_url, manager), prerequisites (kernel headers, dkms), pinning
    (the branch-pinning packages to install first), driver (the driver package whose version
    is the driver's version), fabricmanager (None without NVSwitch)
    and problems (empty when the node is supported).
    """
    problems = []
    key = os_key(distribution, major_version)
    repository_arch = _REPOSITORY_ARCHITECTURES.get(architecture)
    if key is None:
        problems.append("the NVIDIA driver role supports %s" % SUPPORTED_OS_TEXT)
    if repository_arch is None:
        problems.append("NVIDIA's repositories have no packages for the %s architecture" % architecture)
    if str(branch) not in NVIDIA_BRANCHES:
        problems.append("branch %s is not one of NVIDIA's driver branches (%s)" % (branch, ", ".join(NVIDIA_BRANCHES)))
    if problems:
        return {"problems": problems}
    folder, manager = _CUDA_REPOSITORY_OS[key]
    url = repository_url or "%s/%s/%s/" % (CUDA_REPOSITORY_BASE, folder, repository_arch)
    url = url if url.endswith("/") else url + "/"
    pinned = int(branch) >= NVIDIA_PINNED_FROM
    base = "nvidia-open" if module_type == "open" else "cuda-drivers"
    prerequisites = ["linux-headers-%s" % kernel_release, "dkms"]
    driver = base if pinned else "%s-%s" % (base, branch)
    pinning = ["nvidia-driver-pinning-%s" % branch] if pinned else []
    fabricmanager = ("nvidia-fabricmanager" if pinned else "nvidia-fabricmanager-%s" % branch) if nvswitch else None
    return {
        "repository": {"url": url, "key_url": url + CUDA_REPOSITORY_KEYS[manager], "manager": manager},
        "prerequisites": prerequisites,
        "pinning": pinning,
        "driver": driver,
        "fabricmanager": fabricmanager,
        "module_type": module_type,
        "problems": [],
    }


def choose_driver_version(available, installed, branch, wanted=""):
    """(full version, problem) of the driver package to hold.

    available: versions the repository offers; installed: the installed version or None.
    An installed driver of the branch is kept unless another version is asked for, so a
    rerun never moves a running driver because the mirror got a newer one.
    """
    in_branch = [version for version in available if upstream_version(version).split(".")[0] == str(branch)]
    if wanted:
        matches = [version for version in in_branch if upstream_version(version) == wanted or version == wanted]
        if installed and (upstream_version(installed) == wanted or installed == wanted):
            return installed, None
        if not matches:
            return None, "version %s is not in the repository (branch %s offers %s)" % (
                wanted, branch, ", ".join(sorted(in_branch, key=version_key)) or "nothing")
        return sorted(matches, key=version_key)[-1], None
    if installed and upstream_version(installed).split(".")[0] == str(branch):
        return installed, None
    if not in_branch:
        return None, "the repository offers no driver of branch %s (it has %s)" % (
            branch, ", ".join(sorted(available, key=version_key)) or "nothing")
    return sorted(in_branch, key=version_key)[-1], None


def fabricmanager_version(driver_version, available):
    """(full version, problem): the fabric manager must be exactly the driver's version."""
    wanted = upstream_version(driver_version)
    matches = [version for version in available if upstream_version(version) == wanted]
    if matches:
        return sorted(matches, key=version_key)[-1], None
    return None, "the fabric manager must be at the driver's version %s, but the repository offers %s" % (
        wanted, ", ".join(sorted(available, key=version_key)) or "none")


def _dpkg_part_key(text):
    """dpkg's order for one part: runs of non-digits (~ first, then the end, then letters, then
    the rest) alternating with numbers compared as numbers."""
    key = []
    for letters, digits in re.findall(r"(\D*)(\d*)", text):
        if not letters and not digits:
            continue
        weights = tuple(-1 if char == "~" else ord(char) if char.isalpha() else ord(char) + 256 for char in letters)
        key.append((weights + (0,), int(digits) if digits else 0))
    # The end of the string: after a "~" part, before anything else.
    return key + [((0,), 0)]


def version_key(version):
    """Sort key of a Debian or RPM version string, as dpkg orders them: epoch first, then the
    upstream version, then the revision (580.105.08 after 580.95.05; 3:580.82 after 580.105)."""
    version = version or ""
    epoch, _colon, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _dash, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return (int(epoch) if epoch.isdigit() else 0, _dpkg_part_key(upstream), _dpkg_part_key(revision))


def packages_at_version(installed, version):
    """Names of installed packages ({name: version}) whose version is the driver's version:
    the driver's components, held together so an upgrade cannot split them."""
    return sorted(name for name, installed_version in installed.items() if installed_version == version)


# ---- what the node's firmware, kernel and package manager say ------------------------------

def secure_boot_state(efivar_bytes):
    """enabled / disabled from the SecureBoot EFI variable (4 attribute bytes, then the value)."""
    if efivar_bytes is None:
        return "disabled"
    return "enabled" if len(efivar_bytes) >= 5 and efivar_bytes[4] == 1 else "disabled"


def iommu_state(cmdline, iommu_devices, group_types):
    """(off / passthrough / on, evidence) from /sys/class/iommu entries, the IOMMU groups'
    types (/sys/kernel/iommu_groups/*/type) and /proc/cmdline. What the kernel registered wins
    over the command line: intel_iommu=off on an AMD host leaves AMD's IOMMU on."""
    words = (cmdline or "").split()
    passthrough = [word for word in words if word in ("iommu=pt", "iommu.passthrough=1", "amd_iommu=pt", "intel_iommu=pt")]
    if not iommu_devices:
        return "off", "no IOMMU is registered under /sys/class/iommu"
    devices, types = ", ".join(iommu_devices), sorted(set(kind for kind in group_types if kind))
    if types:
        if all(kind == "identity" for kind in types):
            return "passthrough", "IOMMU %s in passthrough (every group is identity)" % devices
        return "on", "IOMMU %s translates DMA (group types %s)" % (devices, ", ".join(types))
    if passthrough:
        return "passthrough", "IOMMU %s, kernel command line has %s" % (devices, " ".join(passthrough))
    return "on", "IOMMU %s is registered and no passthrough is set" % devices


def parse_dpkg_query(output):
    """{name: {version, held}} from `dpkg-query -W -f '${Package}\\t${Version}\\t${Status}\\n'`,
    installed packages only."""
    packages = {}
    for line in (output or "").splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            continue
        name, version, status = fields
        want, _error, state = (status.split() + ["", "", ""])[:3]
        if state == "installed":
            packages[name.split(":")[0]] = {"version": version, "held": want == "hold"}
    return packages


def parse_apt_madison(output):
    """{name: [versions]} from `apt-cache madison NAME...`."""
    available = {}
    for line in (output or "").splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) >= 3 and fields[0] and fields[1]:
            versions = available.setdefault(fields[0], [])
            if fields[1] not in versions:
                versions.append(fields[1])
    return available


# ---- what the vendor tools print -------------------------------------------------------------

def parse_nvidia_smi_fabric(text):
    """Per GPU, the Fabric section of `nvidia-smi -q`: [{state, status}] in GPU order."""
    gpus, in_fabric, current = [], False, None
    for line in (text or "").splitlines():
        stripped = line.strip()
        if re.match(r"^GPU [0-9A-Fa-f]+:[0-9A-Fa-f:.]+$", stripped):
            current = {"state": None, "status": None}
            gpus.append(current)
            in_fabric = False
            continue
        if stripped == "Fabric":
            in_fabric = current is not None
            continue
        if in_fabric and ":" in stripped:
            key, _separator, value = (part.strip() for part in stripped.partition(":"))
            if key in ("State", "Status"):
                current[key.lower()] = value
            elif key not in ("CliqueId", "ClusterUUID", "Summary", "Bandwidth", "Route Recovery in progress",
                             "Route Unhealthy", "Access Timeout Recovery", "Incorrect Configuration"):
                in_fabric = False
        elif in_fabric and stripped == "Health":
            continue
        elif in_fabric and not stripped:
            in_fabric = False
    return gpus


def fabric_problems(gpus):
    """GPUs whose fabric is not Completed/Success, as sentences. N/A (A100 HGX reports no
    fabric state even with the fabric manager running) is left to the unit's state."""
    problems = []
    for index, gpu in enumerate(gpus):
        if gpu.get("state") in (None, "N/A"):
            continue
        if (gpu.get("state"), gpu.get("status")) != ("Completed", "Success"):
            problems.append("GPU %d fabric state %s, status %s" % (index, gpu.get("state"), gpu.get("status")))
    return problems


def parse_ibv_devinfo(text):
    """{device: [port states]} from `ibv_devinfo` output (one or more hca_id blocks)."""
    devices, current = {}, None
    for line in (text or "").splitlines():
        match = re.match(r"^hca_id:\s*(\S+)", line.strip())
        if match:
            current = match.group(1)
            devices[current] = []
            continue
        match = re.match(r"^state:\s*(\S+)", line.strip())
        if match and current is not None:
            devices[current].append(match.group(1))
    return devices
