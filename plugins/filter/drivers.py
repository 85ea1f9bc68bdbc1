# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the drivers phase: each driver role's refusals (decided in preflight, before any
change, naming host, variable, value and fix), the NVIDIA package plan and its versions, and
the verify checks. The decisions themselves live in module_utils/_drivers.py."""

from __future__ import annotations

import os

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.llmops.inference.plugins.module_utils._drivers import (
    SUPPORTED_OS_TEXT,
    NVIDIA_LAST_PRE_TURING_BRANCH,
    choose_driver_version,
    fabric_problems,
    fabricmanager_version,
    gpu_generation,
    kernel_module_type,
    nvidia_package_plan,
    os_key,
    os_text,
    packages_at_version,
    parse_ibv_devinfo,
    parse_nvidia_smi_fabric,
    upstream_version,
    version_key,
)

VASTAI_PACKAGE_KINDS = (".run", ".deb")


def driver_roles_to_check(accelerators):
    """The driver roles whose inputs a node's preflight checks, from what its PCI bus shows."""
    roles = {"nvidia": ["nvidia_driver"], "vastai": ["vastai_driver"]}.get(accelerators.get("vendor"), [])
    return roles + (["erdma"] if int(accelerators.get("erdma_nic_count") or 0) > 0 else [])


def secure_boot_problem(host, driver_host, signed, role):
    """The Secure Boot refusal shared by every role that loads an out-of-tree module."""
    state = (driver_host.get("secure_boot") or {}).get("state")
    if state not in ("enabled", "unknown") or signed:
        return []
    if state == "unknown":
        return ["On %s: Secure Boot could not be read (%s), and an unsigned %s module would be refused if it is on. Fix: "
                "mount efivarfs or install mokutil so it can be read, or set llmops_kernel_modules_signed: true for this "
                "host if the modules are signed or Secure Boot is off." % (host, driver_host["secure_boot"].get("evidence"), role)]
    return ["On %s: Secure Boot is on (%s) and llmops_kernel_modules_signed=false, so the kernel would refuse the "
            "unsigned %s modules. Fix: enroll the signing key as a MOK (mokutil --import) or use modules signed for "
            "this kernel by the distribution, then set llmops_kernel_modules_signed: true for this host; or turn "
            "Secure Boot off in the firmware." % (host, driver_host["secure_boot"].get("evidence"), role)]


def nvidia_driver_plan(accelerators, os_facts, driver_host, settings):
    """The node's NVIDIA plan: module type, packages and any problems (settings: the role's variables)."""
    device_ids = accelerators.get("pci_device_ids") or []
    module_type, reason, problem = kernel_module_type(device_ids, settings.get("kernel_module_type", "auto"))
    plan = {"module_type": module_type, "module_type_reason": reason,
            "generations": sorted({gpu_generation(device_id) for device_id in device_ids})}
    plan.update(nvidia_package_plan(
        os_facts.get("distribution"), os_facts.get("distribution_major_version"), os_facts.get("architecture"),
        driver_host.get("kernel_release"), settings.get("branch"), module_type,
        int(accelerators.get("nvswitch_count") or 0) > 0, settings.get("repository_url") or ""))
    if problem:
        plan["problems"] = plan.get("problems", []) + [problem]
    return plan


def nvidia_driver_problems(host, accelerators, os_facts, driver_host, settings, signed):
    """Every reason to refuse an NVIDIA node, each a sentence with the variable, value and fix."""
    problems = []
    branch = str(settings.get("branch"))
    wanted = str(settings.get("version") or "")
    if settings.get("install", True):
        plan = nvidia_driver_plan(accelerators, os_facts, driver_host, settings)
        for problem in plan["problems"]:
            if "supports" in problem:
                problems.append("On %s: %s, and this node runs %s. Fix: use a supported OS, or set nvidia_driver_install: "
                                "false and install the driver yourself (the role then only verifies it)."
                                % (host, problem, os_text(os_facts.get("distribution"), os_facts.get("distribution_version"))))
            elif "branch" in problem:
                problems.append("On %s: nvidia_driver_branch=%s is wrong: %s. Fix: set nvidia_driver_branch to one of them."
                                % (host, branch, problem))
            elif "kernel modules" in problem or "GPUs" in problem:
                generations = ", ".join(plan["generations"])
                problems.append("On %s: nvidia_driver_kernel_module_type=%s does not fit: %s (generations %s). Fix: set "
                                "nvidia_driver_kernel_module_type: auto." % (host, settings.get("kernel_module_type"), problem, generations))
            else:
                problems.append("On %s: %s. Fix: run the drivers phase on x86_64 or aarch64 nodes only." % (host, problem))
        if "pre-turing" in plan.get("generations", []) and branch.isdigit() and int(branch) > NVIDIA_LAST_PRE_TURING_BRANCH:
            problems.append("On %s: nvidia_driver_branch=%s does not support this node's Maxwell/Pascal/Volta GPUs; %d is "
                            "the last branch that does. Fix: set nvidia_driver_branch: \"%d\"."
                            % (host, branch, NVIDIA_LAST_PRE_TURING_BRANCH, NVIDIA_LAST_PRE_TURING_BRANCH))
        url = settings.get("repository_url") or ""
        if settings.get("repository_trusted") and not url.startswith("file:"):
            problems.append("On %s: nvidia_driver_repository_trusted=true turns off signature checks, allowed only for a "
                            "local file: mirror, but nvidia_driver_repository_url='%s'. Fix: set "
                            "nvidia_driver_repository_key_url to your mirror's key and nvidia_driver_repository_trusted: false."
                            % (host, url))
        problems += secure_boot_problem(host, driver_host, signed, "NVIDIA")
    if wanted and upstream_version(wanted).split(".")[0] != branch:
        problems.append("On %s: nvidia_driver_version=%s is not of nvidia_driver_branch=%s. Fix: set both to the same "
                        "branch (e.g. nvidia_driver_branch: \"%s\")." % (host, wanted, branch, wanted.split(".", maxsplit=1)[0]))
    return problems


def nvidia_driver_versions(plan, driver_host, settings):
    """The versions to install and hold: {driver, fabricmanager, problems} from what the
    repository offers (driver_facts available) and what is installed."""
    installed = driver_host.get("packages") or {}
    available = driver_host.get("available") or {}
    driver_installed = (installed.get(plan["driver"]) or {}).get("version")
    driver, problem = choose_driver_version(available.get(plan["driver"], []), driver_installed,
                                            settings.get("branch"), str(settings.get("version") or ""))
    result = {"driver": driver, "fabricmanager": None, "problems": []}
    if problem:
        result["problems"].append("%s: %s. Fix: set nvidia_driver_version to one the repository offers, or point "
                                  "nvidia_driver_repository_url at a mirror that has it." % (plan["driver"], problem))
        return result
    if plan.get("fabricmanager"):
        fm_installed = (installed.get(plan["fabricmanager"]) or {}).get("version")
        offered = available.get(plan["fabricmanager"], []) + ([fm_installed] if fm_installed else [])
        fm_version, problem = fabricmanager_version(driver, offered)
        both = sorted({upstream_version(version) for version in available.get(plan["driver"], [])}
                      & {upstream_version(version) for version in available.get(plan["fabricmanager"], [])}
                      & {upstream_version(version) for version in available.get(plan["driver"], [])
                         if upstream_version(version).split(".")[0] == str(settings.get("branch"))}, key=version_key)
        if problem:
            result["problems"].append("%s: %s (a mismatch leaves NVSwitch GPUs unusable, CUDA error 802). Fix: set "
                                      "nvidia_driver_version to a version both offer (%s), or update the mirror."
                                      % (plan["fabricmanager"], problem, ", ".join(both) or "none"))
        result["fabricmanager"] = fm_version
    return result


def packages_to_hold(driver_host, versions, names):
    """Installed packages to hold that are not held yet: every package at the driver's exact
    version (its components, the fabric manager) plus the named ones."""
    installed = {name: package["version"] for name, package in (driver_host.get("packages") or {}).items()}
    wanted = set(packages_at_version(installed, versions.get("driver"))) | {name for name in names if name in installed}
    held = {name for name, package in (driver_host.get("packages") or {}).items() if package.get("held")}
    return sorted(wanted - held)


def nvidia_verify_problems(host, accelerators, smi_persistence, smi_query, units, settings):
    """What the NVIDIA verify found wrong: GPU count against PCI, persistence, fabric, units."""
    problems = []
    driver = accelerators.get("driver") or {}
    if not driver.get("answered"):
        problems.append("nvidia-smi did not answer (state %s): %s" % (driver.get("state"), driver.get("message")))
        return ["On %s: %s" % (host, problem) for problem in problems]
    if accelerators.get("driver_count") != accelerators.get("pci_count"):
        problems.append("nvidia-smi sees %s GPU(s) but the PCI bus has %s" % (accelerators.get("driver_count"), accelerators.get("pci_count")))
    if settings.get("persistenced", True):
        modes = [line.strip() for line in (smi_persistence or "").splitlines() if line.strip()]
        off = [str(index) for index, mode in enumerate(modes) if mode != "Enabled"]
        if off or not modes:
            problems.append("persistence mode is not Enabled on GPU(s) %s" % (", ".join(off) or "all"))
        if units.get("nvidia-persistenced") != "active":
            problems.append("nvidia-persistenced is %s" % units.get("nvidia-persistenced"))
    if int(accelerators.get("nvswitch_count") or 0) > 0:
        problems += fabric_problems(parse_nvidia_smi_fabric(smi_query))
        if units.get("nvidia-fabricmanager") != "active":
            problems.append("nvidia-fabricmanager is %s" % units.get("nvidia-fabricmanager"))
    wanted = str(settings.get("version") or "")
    if wanted and driver.get("version") != wanted:
        problems.append("the loaded driver is %s, nvidia_driver_version is %s (a reboot loads the new one)"
                        % (driver.get("version"), wanted))
    return ["On %s: %s" % (host, problem) for problem in problems]


def package_source_problems(host, variable, package, checksum, checksum_variable):
    """An operator-supplied package must be an absolute path on the control node or a URL whose
    bytes are protected (https or a checksum): it runs as root on the node."""
    if "://" in package:
        if not package.startswith("https://") and not checksum:
            return ["On %s: %s=%s is fetched without TLS and without a checksum, and it runs as root. Fix: use https or "
                    "set %s (sha256:<hex>)." % (host, variable, package, checksum_variable)]
        return []
    if not os.path.isabs(package):
        return ["On %s: %s=%s is a relative path. Fix: give the absolute path of the file on the control node."
                % (host, variable, package)]
    if not os.path.isfile(package):
        return ["On %s: %s=%s does not exist on the control node. Fix: copy the file there or give your mirror's "
                "https URL." % (host, variable, package)]
    return []


def vastai_driver_problems(host, accelerators, os_facts, driver_host, settings, signed):
    """Every reason to refuse a VastAI node before anything changes."""
    problems = []
    package = settings.get("package") or ""
    if not package:
        return ["On %s: the node has %d VastAI die(s) but vastai_driver_package is empty. Fix: set it to the driver "
                "package Vastai Technologies gave you (a vastai_driver_install_<version>.run, or a vastai-pci-dkms .deb), as "
                "a path on the control node or an https URL of your mirror; this collection never downloads "
                "it from the vendor." % (host, accelerators.get("pci_count", 0))]
    kind = os.path.splitext(package.split("?")[0])[1]
    if kind not in VASTAI_PACKAGE_KINDS:
        problems.append("On %s: vastai_driver_package=%s is not a .run or .deb file. Fix: give the package as "
                        "Vastai Technologies ships it for Debian and Ubuntu." % (host, package))
    problems += package_source_problems(host, "vastai_driver_package", package, settings.get("package_checksum"),
                                        "vastai_driver_package_checksum")
    if os_key(os_facts.get("distribution"), os_facts.get("distribution_major_version")) is None:
        problems.append("On %s: the VastAI driver role supports %s, and this node runs %s. Fix: use a supported OS."
                        % (host, SUPPORTED_OS_TEXT, os_text(os_facts.get("distribution"), os_facts.get("distribution_version"))))
    iommu = driver_host.get("iommu") or {}
    allowed = settings.get("iommu_allowed") or ["off", "passthrough"]
    if iommu.get("state") not in allowed:
        problems.append("On %s: the IOMMU is %s (%s), and vastai_driver_iommu_allowed=%s: the VastAI driver and its "
                        "serving container refuse an enabled IOMMU. Fix: boot with intel_iommu=off (or amd_iommu=off), or "
                        "iommu=pt for passthrough, on the kernel command line and reboot; or add '%s' to "
                        "vastai_driver_iommu_allowed if your driver release accepts it."
                        % (host, iommu.get("state"), iommu.get("evidence"), list(allowed), iommu.get("state")))
    problems += secure_boot_problem(host, driver_host, signed, "VastAI")
    return problems


def vastai_verify_problems(host, accelerators):
    """The dies the driver exposes must be the dies on the PCI bus."""
    driver = accelerators.get("driver") or {}
    if not driver.get("answered"):
        return ["On %s: the VastAI driver did not answer (state %s): %s" % (host, driver.get("state"), driver.get("message"))]
    if accelerators.get("driver_count") != accelerators.get("pci_count"):
        return ["On %s: the driver exposes %s /dev/vacc* node(s) but the PCI bus has %s AI die(s)"
                % (host, accelerators.get("driver_count"), accelerators.get("pci_count"))]
    if not driver.get("version"):
        return ["On %s: /dev/vastai*_version holds no driver version" % host]
    return []


# Alibaba Cloud: with NCCL's LL128 protocol the eRDMA interface MTU must be 8500 (jumbo frames)
# or 1400; another MTU "causes data consistency problems".
ERDMA_SAFE_MTUS = (1400, 8500)


def erdma_mtu_problems(host, driver_host, check=True):
    """An eRDMA interface whose MTU is neither 1400 nor 8500, with the fix; nothing when the
    check is off or sysfs does not say (the erdma driver not loaded yet)."""
    if not boolean(check, strict=False):
        return []
    return ["On %s: %s carries %s with MTU %d; with NCCL's LL128 protocol eRDMA needs MTU 8500 (jumbo frames) or "
            "1400, and another MTU can corrupt data. Fix: ip link set %s mtu 8500 and keep it in the interface's "
            "configuration (or 1400); or, knowingly, set NCCL_PROTO: '^LL128' in vllm_serve_extra_env and "
            "ray_cluster_extra_env and erdma_mtu_check: false."
            % (host, device, link["netdev"], link["mtu"], link["netdev"])
            for device, link in sorted((driver_host.get("erdma_links") or {}).items())
            if link.get("mtu") is not None and link["mtu"] not in ERDMA_SAFE_MTUS]


def erdma_problems(host, accelerators, driver_host, settings, signed):
    """Every reason to refuse an eRDMA node before anything changes.

    settings: erdma_source, erdma_installer_package, erdma_installer_checksum and erdma_mtu_check
    as source, installer_package, installer_checksum and mtu_check.
    """
    source = settings.get("source", "auto")
    package = settings.get("installer_package") or ""
    module = (driver_host.get("modules") or {}).get("erdma") or {}
    problems = []
    if source == "installer" and not package:
        problems.append("On %s: erdma_source=installer but erdma_installer_package is empty. Fix: set it to Alibaba's "
                        "erdma_installer-<version>.tar.gz (a path on the control node or your mirror's https URL)." % host)
    if source == "distribution" and not (module.get("available") or module.get("loaded")):
        problems.append("On %s: erdma_source=distribution but the running kernel %s has no erdma module (Debian 12's "
                        "stock kernel has none). Fix: set erdma_installer_package to Alibaba's installer, or boot a kernel "
                        "that ships erdma." % (host, driver_host.get("kernel_release")))
    if source == "auto" and not package and not (module.get("available") or module.get("loaded")):
        problems.append("On %s: the node has %s eRDMA NIC(s) but the kernel %s has no erdma module and "
                        "erdma_installer_package is empty. Fix: set erdma_installer_package to Alibaba's "
                        "erdma_installer-<version>.tar.gz." % (host, accelerators.get("erdma_nic_count"),
                                                               driver_host.get("kernel_release")))
    if package:
        problems += package_source_problems(host, "erdma_installer_package", package, settings.get("installer_checksum"),
                                            "erdma_installer_checksum")
        problems += secure_boot_problem(host, driver_host, signed, "eRDMA")
    return problems + erdma_mtu_problems(host, driver_host, settings.get("mtu_check", True))


def erdma_verify_problems(host, accelerators, driver_host, ibv_devinfo, compat_mode, mtu_check=True):
    """Every eRDMA NIC must show as an RDMA device whose ports are PORT_ACTIVE, on an
    interface of MTU 1400 or 8500 (unless mtu_check is off)."""
    devices = driver_host.get("erdma_devices") or []
    problems = []
    if len(devices) < int(accelerators.get("erdma_nic_count") or 0):
        problems.append("%d eRDMA NIC(s) on the PCI bus but %d RDMA device(s) with the erdma driver (%s)"
                        % (accelerators.get("erdma_nic_count"), len(devices), ", ".join(devices) or "none"))
    states = parse_ibv_devinfo(ibv_devinfo)
    for device in devices:
        ports = states.get(device) or []
        if not ports or any(not state.startswith("PORT_ACTIVE") for state in ports):
            problems.append("%s ports are %s, not PORT_ACTIVE" % (device, ", ".join(ports) or "unknown to ibv_devinfo"))
    loaded = ((driver_host.get("modules") or {}).get("erdma") or {}).get("parameters", {}).get("compat_mode")
    if compat_mode and loaded not in ("Y", "1"):
        problems.append("erdma is loaded with compat_mode=%s, wanted Y (a reboot loads it with the new option)" % loaded)
    return ["On %s: %s" % (host, problem) for problem in problems] + erdma_mtu_problems(host, driver_host, mtu_check)


def toolkit_version(driver_host, wanted=""):
    """{version, problem}: the container toolkit's version to install; the installed one is
    kept unless another is asked for."""
    name = "nvidia-container-toolkit"
    offered = (driver_host.get("available") or {}).get(name) or []
    installed = ((driver_host.get("packages") or {}).get(name) or {}).get("version")
    if wanted:
        if installed and upstream_version(installed) == wanted:
            return {"version": installed, "problem": ""}
        matches = sorted((version for version in offered if upstream_version(version) == wanted), key=version_key)
        if matches:
            return {"version": matches[-1], "problem": ""}
        return {"version": None, "problem": "nvidia_container_toolkit_version=%s is not in the repository (it offers %s). "
                "Fix: set it to one of those, or empty for the newest." % (wanted, ", ".join(sorted(offered, key=version_key)) or "nothing")}
    if installed:
        return {"version": installed, "problem": ""}
    if not offered:
        return {"version": None, "problem": "the repository offers no %s. Fix: point nvidia_driver_repository_url at a "
                "mirror that has NVIDIA's container toolkit." % name}
    return {"version": sorted(offered, key=version_key)[-1], "problem": ""}


def with_version(names, version):
    """Package specs pinned to one version for apt: name=version."""
    return ["%s=%s" % (name, version) for name in names]


def nvidia_reboot_reasons(driver_host, versions):
    """Why the node must reboot before the installed driver can run (empty: it need not)."""
    modules = driver_host.get("modules") or {}
    reasons = []
    if (modules.get("nouveau") or {}).get("loaded"):
        reasons.append("nouveau is loaded (now blocked); the NVIDIA module can load only after a reboot")
    nvidia = modules.get("nvidia") or {}
    wanted = upstream_version(versions.get("driver")) if versions.get("driver") else None
    if nvidia.get("loaded") and wanted and nvidia.get("version") and nvidia["version"] != wanted:
        reasons.append("the running NVIDIA module is %s but %s is installed" % (nvidia["version"], wanted))
    return reasons


def foreign_driver_problem(host, driver_host, accelerators, plan):
    """A driver already running that the plan's packages did not install (Ubuntu's own
    packages, a .run install): replacing it is the operator's call, not this role's."""
    running = ((driver_host.get("modules") or {}).get("nvidia") or {}).get("loaded") or \
        (accelerators.get("driver") or {}).get("answered")
    if not running or plan.get("driver") in (driver_host.get("packages") or {}):
        return ""
    version = ((driver_host.get("modules") or {}).get("nvidia") or {}).get("version") or \
        (accelerators.get("driver") or {}).get("version") or "of unknown version"
    return ("On %s: an NVIDIA driver %s is already running, and it was not installed from %s (package %s is not "
            "installed). Nothing was changed. Fix: set nvidia_driver_install: false for this host to keep it (the role "
            "then only verifies it), or remove it and rerun." % (host, version, plan["repository"]["url"], plan["driver"]))


def module_load_problem(host, module, modprobe):
    """A module that does not load after its package installed: the failure and its evidence."""
    if (modprobe or {}).get("rc") in (None, 0):
        return ""
    return ("On %s: modprobe %s failed (rc %s): %s. Check the module was built for the running kernel (dkms status) "
            "and that Secure Boot accepts it." % (host, module, modprobe["rc"],
                                                  (modprobe.get("stderr") or modprobe.get("stdout") or "no output").strip()))


def unit_states(names, systemctl_is_active):
    """{unit: state} from `systemctl is-active NAME...` (one line per unit, in order)."""
    lines = (systemctl_is_active or "").splitlines()
    return {name: (lines[index].strip() if index < len(lines) else "unknown") for index, name in enumerate(names)}


def nvidia_summary(accelerators, settings, plan):
    """One line for the drivers summary."""
    source = "%s modules" % plan["module_type"] if settings.get("install") and plan.get("module_type") else "installed by you"
    held = ", held" if settings.get("install") and settings.get("hold") else ""
    line = "NVIDIA driver %s (%s%s): %s of %s GPU(s)" % (
        (accelerators.get("driver") or {}).get("version"), source, held, accelerators.get("driver_count"),
        accelerators.get("pci_count"))
    if settings.get("persistenced"):
        line += ", persistence on"
    if int(accelerators.get("nvswitch_count") or 0):
        line += ", %s NVSwitch with the fabric manager active and the fabric Completed/Success" % accelerators["nvswitch_count"]
    return line


class FilterModule:
    def filters(self):
        return {
            "driver_roles_to_check": driver_roles_to_check,
            "nvidia_driver_plan": nvidia_driver_plan,
            "nvidia_driver_problems": nvidia_driver_problems,
            "nvidia_driver_versions": nvidia_driver_versions,
            "nvidia_verify_problems": nvidia_verify_problems,
            "packages_to_hold": packages_to_hold,
            "nvidia_reboot_reasons": nvidia_reboot_reasons,
            "foreign_driver_problem": foreign_driver_problem,
            "module_load_problem": module_load_problem,
            "unit_states": unit_states,
            "toolkit_version": toolkit_version,
            "with_version": with_version,
            "nvidia_summary": nvidia_summary,
            "vastai_driver_problems": vastai_driver_problems,
            "vastai_verify_problems": vastai_verify_problems,
            "erdma_problems": erdma_problems,
            "erdma_verify_problems": erdma_verify_problems,
        }
