"""What a serving image carries against what the plan needs (module_utils/_images.py), and the
probe script itself run by this interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _images as images

VLLM_032 = {"python": "3.12.3", "vllm": "0.32.0", "ray": None, "torch": "2.10.0", "torch_cuda": "13.0",
            "erdma_provider": False}
NEEDS = {"ray": True, "driver": "580.95.05", "erdma": False}


def problems(probe=None, **needs):
    return images.image_problems({"present": True, "probe": dict(VLLM_032, **(probe or {}))}, "gpu-1",
                                 "vllm/vllm-openai:v0.32.0", dict(NEEDS, **needs))


def test_upstreams_image_without_ray_is_refused_for_the_ray_cluster():
    [problem] = problems()
    assert problem.startswith("On gpu-1: the serving image vllm/vllm-openai:v0.32.0 has no Ray")
    assert "Fix: set serving_image_derive: true (the collection then builds the image once with Ray" in problem
    assert problems({"ray": "2.60.0"}) == []
    assert problems(ray=False) == []


def test_a_cuda_13_image_on_branch_570_is_refused_naming_the_branch_it_needs():
    [problem] = problems({"ray": "2.60.0"}, driver="570.133.20")
    assert "is built for CUDA 13.0, which needs NVIDIA driver branch 580 or later; the node's driver is 570.133.20" in problem
    assert "set nvidia_driver_branch to 580 or later, or name an image built for CUDA 12" in problem
    assert problems({"ray": "2.60.0", "torch_cuda": "12.8"}, driver="535") == []
    assert problems({"ray": "2.60.0"}, driver="") == []  # not an NVIDIA node


def test_cuda_majors_the_collection_does_not_know_are_worded_plainly():
    [newer] = problems({"ray": "2.60.0", "torch_cuda": "14.0"}, driver="580.95.05")
    assert "needs a newer NVIDIA driver than this collection knows; the node's driver is 580.95.05. Fix: upgrade the driver, " \
           "or name an image built for CUDA 13." in newer
    [old] = problems({"ray": "2.60.0", "torch_cuda": "12.4"}, driver="418.67")
    assert "needs NVIDIA driver branch 525 or later; the node's driver is 418.67. Fix: set nvidia_driver_branch to 525 or " \
           "later, or name an image for this driver." in old


def test_eRDMA_nics_need_the_erdma_verbs_provider_in_the_image():
    [problem] = problems({"ray": "2.60.0"}, erdma=True)
    assert "has no erdma verbs provider (rdma-core 42 or later)" in problem
    assert problems({"ray": "2.60.0", "erdma_provider": True}, erdma=True) == []


def test_an_image_not_held_yet_or_failing_its_probe():
    assert images.image_problems({"present": False}, "h", "img:1", NEEDS) == []
    [problem] = images.image_problems({"present": True, "error": "exit 127: python3: not found"}, "h", "img:1", NEEDS)
    assert problem.startswith("On h: the serving image img:1 could not be probed: exit 127")
    assert "has no vLLM" in problems({"vllm": None, "ray": "2.60.0"})[0]


def test_driver_branches_and_cuda_majors():
    assert [images.cuda_major_for_driver(v) for v in ("580.95.05", "575", "535.247.01", "470", "", None)] == [
        13, 12, 12, 11, None, None]


def test_the_probe_script_answers_with_the_standard_library_alone():
    completed = subprocess.run([sys.executable, "-I", "-c", images.PROBE_SCRIPT], capture_output=True, text=True,
                               check=True)
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert set(answer) == {"python", "vllm", "ray", "torch", "torch_cuda", "erdma_provider"}


@pytest.mark.parametrize("engine, expected", [
    ("vllm/vllm-openai:v0.32.0", "llmops/vllm-openai:v0.32.0-ray2.60.0-"),
    ("llmops-vllm-cpu:0.32.0", "llmops/llmops-vllm-cpu:0.32.0-ray2.60.0-"),
    ("registry.example:5000/ai/vllm@sha256:" + "a" * 64, "llmops/vllm:sha256-aaaaaaaaaaaa-ray2.60.0-"),
    ("Acme/VLLM", "llmops/vllm:latest-ray2.60.0-"),
])
def test_a_derived_image_is_named_by_its_engine_image_and_ray(engine, expected):
    name = images.derived_image_name(engine, "ray==2.60.0")
    assert name.startswith(expected) and len(name) == len(expected) + 10
    assert images.derived_image_name(engine, "ray==2.60.0") == name  # the same inputs: the same name
    assert images.derived_image_name(engine, "ray==2.61.0") != name
    assert images.derived_image_name(engine + "-other", "ray==2.60.0") != name


def test_the_ray_requirement_must_name_one_version():
    assert images.requirement_version("ray==2.60.0") == "2.60.0"
    assert images.requirement_version("ray[default] == 2.60.0") == "2.60.0"
    assert [images.requirement_version(text) for text in ("ray", "ray>=2.60", "torch==2.1", "", None)] == [None] * 5


def test_the_build_script_adds_ray_only_when_that_version_is_missing(tmp_path):
    """BUILD_SCRIPT run by sh against a stand-in python3 and pip (the e2e tests run it in the
    real engine image): an engine image with Ray at the pin installs nothing."""
    log = tmp_path / "calls"
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho \"python3 $*\" >> %s\n"
                    "case \"$*\" in *importlib.metadata*) [ -f %s/have ] && cat %s/have || exit 1;;\n"
                    "*'import ray'*) echo 'Ray 2.60.0 imports';; esac\n" % (log, tmp_path, tmp_path))
    fake.chmod(0o755)
    env = {"PATH": "%s:/usr/bin:/bin" % tmp_path}
    run = subprocess.run(["sh", "-c", images.BUILD_SCRIPT, "build", "ray==2.60.0", "--no-index"], env=env,
                         capture_output=True, text=True, check=True)
    assert "python3 -m pip install --no-cache-dir --disable-pip-version-check --no-index ray==2.60.0" in log.read_text()
    assert "Ray 2.60.0 imports" in run.stdout
    log.write_text("")
    (tmp_path / "have").write_text("2.60.0\n")
    run = subprocess.run(["sh", "-c", images.BUILD_SCRIPT, "build", "ray==2.60.0"], env=env, capture_output=True,
                         text=True, check=True)
    assert "Ray 2.60.0 is in the engine image already" in run.stdout
    assert "pip install" not in log.read_text()
