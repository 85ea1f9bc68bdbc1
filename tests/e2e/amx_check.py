"""Run inside the serving image: does a process that vLLM would spawn or fork hold AMX
permission when the CPU has AMX, and did the image's .pth hook load in it on its own?
Reads the permission with the raw syscall (not through the hook). Prints one JSON line;
exits 1 when a check fails."""

import ctypes
import json
import multiprocessing
import os
import site
import sys

SYS_ARCH_PRCTL = 158
ARCH_GET_XCOMP_PERM = 0x1022
XTILE_MASK = (1 << 17) | (1 << 18)
HOOK = "llmops_amx_permission"


def permitted_mask():
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ctypes.c_uint64(0)
    result = libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_ulong(ARCH_GET_XCOMP_PERM),
                          ctypes.c_ulong(ctypes.addressof(mask)))
    return mask.value if result == 0 else None


def child(queue):
    queue.put({"hook_loaded": HOOK in sys.modules, "mask": permitted_mask()})


if __name__ == "__main__":
    report = {"hook_loaded": HOOK in sys.modules, "mask": permitted_mask()}
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    report["cpu_has_amx"] = "amx_tile" in flags
    report["pth_files"] = sorted(name for folder in site.getsitepackages() if os.path.isdir(folder)
                                 for name in os.listdir(folder) if name.endswith(".pth") and "amx" in name)
    for method in ("spawn", "fork"):
        context = multiprocessing.get_context(method)
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        report[method] = queue.get(timeout=60)
        process.join(timeout=60)
    processes = [report, report["spawn"], report["fork"]]
    good = report["pth_files"] == ["llmops-amx-permission.pth"] and all(p["hook_loaded"] for p in processes)
    if report["cpu_has_amx"]:
        good = good and all(p["mask"] is not None and p["mask"] & XTILE_MASK == XTILE_MASK for p in processes)
    print(json.dumps(report))
    sys.exit(0 if good else 1)
