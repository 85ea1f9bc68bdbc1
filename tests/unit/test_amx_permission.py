"""The serving image's AMX permission hook (tools/llmops_amx_permission.py), with the
arch_prctl syscall simulated for CPUs this machine may not have."""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing
import sys

import pytest

from conftest import REPO_ROOT

SPEC = importlib.util.spec_from_file_location("llmops_amx_permission", REPO_ROOT / "tools" / "llmops_amx_permission.py")
amx = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(amx)


class SimulatedKernel:
    """arch_prctl as Linux >= 5.16 answers it: AMX permitted only after a request, on AMX CPUs."""

    def __init__(self, cpu_has_amx, pre_granted=False):
        self.cpu_has_amx = cpu_has_amx
        # On AMX CPUs XTILECFG (bit 17) is permitted from the start, XTILEDATA (bit 18) only on request.
        self.mask = (0x202e7 if cpu_has_amx else 0x2e7) | (amx.XTILE_MASK if pre_granted else 0)
        self.calls = []

    def __call__(self, number, code, argument):
        assert number == amx.SYS_ARCH_PRCTL
        self.calls.append(code)
        if code == amx.ARCH_REQ_XCOMP_PERM:
            assert argument == amx.XFEATURE_XTILEDATA
            if not self.cpu_has_amx:
                return -1, 22  # EINVAL
            self.mask |= amx.XTILE_MASK
            return 0, 0
        if code == amx.ARCH_GET_XCOMP_PERM:
            ctypes.c_uint64.from_address(argument).value = self.mask
            return 0, 0
        raise AssertionError("unexpected arch_prctl code %#x" % code)


@pytest.mark.parametrize("pre_granted", [False, True])
def test_amx_cpu_gets_the_permission_whether_or_not_the_kernel_pre_granted_it(pre_granted):
    kernel = SimulatedKernel(cpu_has_amx=True, pre_granted=pre_granted)
    state, mask = amx.request_permission(kernel, "x86_64")
    assert state == amx.GRANTED and mask & amx.XTILE_MASK == amx.XTILE_MASK
    assert kernel.calls == [amx.ARCH_REQ_XCOMP_PERM, amx.ARCH_GET_XCOMP_PERM]


def test_cpu_without_amx_is_left_alone():
    kernel = SimulatedKernel(cpu_has_amx=False)
    state, mask = amx.request_permission(kernel, "x86_64")
    assert state == amx.UNAVAILABLE and mask & amx.XTILE_MASK == 0


def test_other_architectures_make_no_syscall():
    kernel = SimulatedKernel(cpu_has_amx=False)
    assert amx.request_permission(kernel, "aarch64") == (amx.NOT_X86_64, None)
    assert kernel.calls == []


def test_cpuinfo_flags_are_read_from_the_flags_line():
    assert amx.has_amx("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    assert not amx.has_amx("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert not amx.has_amx("")


def _child_state(queue):
    queue.put((amx.STATE, amx.permitted_mask(amx.libc_syscall)))


@pytest.mark.skipif(sys.platform != "linux", reason="arch_prctl is Linux-only")
def test_this_machine_matches_its_cpu_flags_in_a_spawned_child():
    """On this machine, for real: granted exactly when the CPU has AMX, in a spawned child too."""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        cpu_has_amx = amx.has_amx(cpuinfo.read())
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_state, args=(queue,))
    child.start()
    state, mask = queue.get(timeout=30)
    child.join(timeout=30)
    if cpu_has_amx:
        assert state == amx.GRANTED and mask & amx.XTILE_MASK == amx.XTILE_MASK
    else:
        assert state in (amx.UNAVAILABLE, amx.NOT_X86_64)
