"""Run inside the serving image (python - < this file): does a process that vLLM would spawn
have AMX permission when the CPU has AMX? Prints one JSON line; exits 1 when it does not."""

import json
import multiprocessing
import sys


def child(queue):
    import llmops_amx_permission as amx

    queue.put({"state": amx.STATE, "mask": amx.permitted_mask(amx.libc_syscall)})


if __name__ == "__main__":
    import llmops_amx_permission as amx

    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        cpu_has_amx = amx.has_amx(cpuinfo.read())
    report = {"cpu_has_amx": cpu_has_amx}
    for method in ("spawn", "fork"):
        context = multiprocessing.get_context(method)
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        report[method] = queue.get(timeout=60)
        process.join(timeout=60)
    granted = all(report[method]["state"] == amx.GRANTED and report[method]["mask"] & amx.XTILE_MASK == amx.XTILE_MASK
                  for method in ("spawn", "fork"))
    print(json.dumps(report))
    sys.exit(0 if granted or not cpu_has_amx else 1)
