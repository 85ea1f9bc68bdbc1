"""tools/gpu_check.py against the SIMULATED nvidia-smi (tests/fixtures/simulated): it must keep
working for the day a GPU machine runs it (its real captures are under fixtures/gpu_check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import FIXTURES, REPO_ROOT


def test_the_gpu_check_captures_and_parses_a_simulated_8_gpu_node(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(REPO_ROOT / "tests/fixtures/simulated/nvidia-smi", bin_dir / "nvidia-smi")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), LLMOPS_FIXTURES=str(FIXTURES))
    out = tmp_path / "out"
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "tools/gpu_check.py"), str(out)], env=env,
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    captures = json.loads((out / "captures.json").read_text())
    assert captures["query-gpu"]["rc"] == 0 and captures["bad-argument"]["rc"] == 2
    parsed = json.loads((out / "parsed.json").read_text())
    assert [gpu["index"] for gpu in parsed["gpus"]] == list(range(8))
    assert parsed["health"]["0"] == {"mig_mode": "Disabled", "retired_pages_pending": False, "remapped_rows_pending": False}
    assert parsed["bad_argument"][0] == "error" and parsed["bad_argument"][1].startswith("nvidia-smi exit 2 (a bad argument)")
    assert "query-gpu: exit 0" in (out / "summary.txt").read_text()


REAL = FIXTURES / "gpu_check" / "h200-1gpu"


def test_the_real_h200_capture_reads_as_the_collection_expects():
    """Our own capture (tools/gpu_check.py on a lent 1 x H200 machine, driver 580.159.04)."""
    from ansible_collections.llmops.inference.plugins.module_utils import _accelerators as acc
    from ansible_collections.llmops.inference.plugins.module_utils import _drivers as drivers
    from ansible_collections.llmops.inference.plugins.module_utils import _plans as plans

    [gpu] = acc.parse_nvidia_smi_gpus((REAL / "query-gpu.txt").read_text())
    assert (gpu["name"], gpu["memory_total_mib"], gpu["driver_version"], gpu["bus_id"]) == (
        "NVIDIA H200", 143771, "580.159.04", "0000:00:06.0")
    # H200 remaps rows; page retirement is not reported ([N/A]).
    assert acc.parse_nvidia_smi_health((REAL / "query-health.txt").read_text()) == {
        0: {"mig_mode": "Disabled", "retired_pages_pending": None, "remapped_rows_pending": False}}
    assert acc.parse_nvidia_smi_list((REAL / "list.txt").read_text())[0]["mig_devices"] == []
    # No NVSwitch on this machine: the Fabric block says N/A.
    assert drivers.parse_nvidia_smi_fabric((REAL / "query-full.txt").read_text()) == [{"state": "N/A", "status": "N/A"}]
    # nvidia-smi prints its errors on stdout, exit 2.
    state, message = acc.nvidia_smi_failure(2, (REAL / "bad-argument.txt").read_text(), "")
    assert (state, message) == ("error", 'nvidia-smi exit 2 (a bad argument): Field "no.such.field" is not a valid field to query.')
    # The help lists every health field the module asks for.
    help_text = (REAL / "help-query-gpu.txt").read_text()
    assert all('"%s"' % field in help_text for field in acc.NVIDIA_SMI_HEALTH_FIELDS + acc.NVIDIA_SMI_QUERY_FIELDS)
    # 141 GB: vLLM's own default of 1024 sequences, so no --max-num-seqs is passed.
    assert plans.max_num_seqs("nvidia", 0, gpu["memory_total_mib"]) == (None, 1024)


def test_the_image_probe_read_torchs_cuda_on_the_real_machine_without_importing_it():
    from ansible_collections.llmops.inference.plugins.module_utils import _images as images

    probe = json.loads((REAL / "image-probe.json").read_text())
    assert (probe["torch"], probe["torch_cuda"], probe["vllm"], probe["ray"]) == ("2.11.0", "13.0", None, None)
    assert (REAL / "torch.txt").read_text().startswith("13.0 True NVIDIA H200")  # torch.version.cuda, imported
    found = {"present": True, "probe": dict(probe, vllm="0.32.0", ray="2.60.0")}
    assert images.image_problems(found, "h200", "img:1", {"ray": True, "driver": "580.159.04", "erdma": False}) == []
    assert "needs NVIDIA driver branch 580" in images.image_problems(
        found, "h200", "img:1", {"ray": True, "driver": "570.195.03", "erdma": False})[0]
