"""End to end: the serving image (image phase). The sandbox's engine image has no Ray, like
upstream's vllm/vllm-openai since vLLM 0.18; the image phase derived the image every node runs
from it, once, with Ray from the wheels on the build node. The sandbox's two nodes share this
machine's Docker engine, so the copy between engines is proven with a third node that has an
engine of its own (sandbox/images-node.sh). Each test leaves the sandbox as deployed."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import HEAD, REPO_ROOT, deploy, docker_inspect, run_playbook, serving_image

WORKER = "llmops-sandbox-worker"
ENGINE_IMAGE = "llmops-vllm-cpu:0.32.0"
IMAGES_NODE = "llmops-sandbox-images"
SECOND_ENGINE = "unix:///var/tmp/llmops-sandbox/engine2/docker.sock"


def image(name, docker_host=None):
    """docker image inspect of name on this machine's engine (or docker_host's); None when absent."""
    completed = subprocess.run(["docker", *(["-H", docker_host] if docker_host else []), "image", "inspect", name],
                               capture_output=True, text=True, check=False)
    return json.loads(completed.stdout)[0] if completed.returncode == 0 else None


def ray_version(name):
    completed = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", name, "-c",
                                "import importlib.metadata as m; print(m.version('ray'))"],
                               capture_output=True, text=True, check=False)
    return completed.stdout.strip() if completed.returncode == 0 else None


def test_every_container_runs_the_image_derived_once_from_the_engine_image_with_ray():
    name = serving_image()
    assert name.startswith("llmops/llmops-vllm-cpu:0.32.0-ray2.60.0-"), name
    derived, engine = image(name), image(ENGINE_IMAGE)
    labels = derived["Config"]["Labels"]
    assert labels["org.llmops.engine-id"] == engine["Id"]
    assert labels["org.llmops.ray-requirement"] == "ray==2.60.0"
    # Ray added at the pin; the engine image itself still has none; it starts as the engine did.
    assert (ray_version(ENGINE_IMAGE), ray_version(name)) == (None, "2.60.0")
    assert (derived["Config"]["Entrypoint"], derived["Config"]["Cmd"]) == (engine["Config"]["Entrypoint"], engine["Config"]["Cmd"])
    # One more layer on the engine's, and no wheels left in it.
    assert derived["RootFS"]["Layers"][:-1] == engine["RootFS"]["Layers"]
    for container in (HEAD + "-ray", WORKER + "-ray", HEAD + "-vllm", WORKER + "-vllm"):
        assert docker_inspect(container)["Image"] == derived["Id"], container


def test_a_rerun_of_the_image_phase_builds_and_copies_nothing():
    output, recap = deploy("--tags", "image")
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert "Derive the serving image" not in output  # every node held it: the phase ran nothing


@pytest.fixture()
def images_inventory(tmp_path):
    """The head (build node) and a node on a second engine, with the sandbox's settings."""
    subprocess.run([str(REPO_ROOT / "sandbox" / "images-node.sh"), "up"], check=True, capture_output=True, text=True)
    (tmp_path / "hosts.yml").write_text(
        "inference_cluster:\n  children:\n"
        "    inference_head: {hosts: {%s: {sandbox_cpu_bind: '0'}}}\n"
        "    inference_workers: {hosts: {%s: {sandbox_cpu_bind: '1'}}}\n"
        "  vars: {ansible_connection: community.docker.docker, ansible_python_interpreter: /usr/bin/python3}\n"
        % (HEAD, IMAGES_NODE))
    (tmp_path / "group_vars").symlink_to(REPO_ROOT / "inventories" / "sandbox" / "group_vars")
    try:
        yield tmp_path
    finally:
        subprocess.run([str(REPO_ROOT / "sandbox" / "images-node.sh"), "down"], check=False, capture_output=True)


def test_a_node_on_another_engine_gets_the_build_nodes_image_by_id_and_a_rerun_changes_nothing(images_inventory):
    name = serving_image()
    built = image(name)["Id"]
    assert image(name, SECOND_ENGINE) is None
    output, recap = run_playbook("playbooks/image.yml", inventory=images_inventory / "hosts.yml")
    assert recap[HEAD]["changed"] >= 1 and recap[IMAGES_NODE]["changed"] >= 1, recap  # the mirror; the copy and the tag
    copied = image(name, SECOND_ENGINE)
    assert copied is not None and copied["Id"] == built
    assert "Derive the serving image" not in output  # built once: the build node held it
    assert "Wait for the copy of " + name in output
    # The archive is gone from both sides once every node holds the image.
    for node in (HEAD, IMAGES_NODE):
        assert subprocess.run(["docker", "exec", node, "sh", "-c", "ls /var/tmp/llmops-sandbox/%s/images/transfer" % node],
                              capture_output=True, check=False).returncode != 0
    output, recap = run_playbook("playbooks/image.yml", inventory=images_inventory / "hosts.yml")
    assert all(counts["changed"] == 0 for counts in recap.values()), recap


def erdma_provider(name):
    """The erdma verbs provider files in image name (what NCCL's IB transport loads for eRDMA)."""
    completed = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", name, "-c",
                                "ls /usr/lib/*/libibverbs/liberdma* 2>/dev/null"], capture_output=True, text=True, check=False)
    return completed.stdout.split()


def test_the_erdma_user_space_goes_into_an_engine_image_that_lacks_it():
    """Real packages into a real image, through the module the image phase runs on the build node:
    Debian 12's libibverbs1 and ibverbs-providers (rdma-core 44; the erdma provider is in it from
    42), into an engine image whose provider was removed - as vLLM's Ubuntu 22.04 image (rdma-core
    39) has none. The sandbox has no eRDMA NICs, so the plan never asks for it here; the plan's
    side is unit-tested (test_plans, test_preflight)."""
    debs = REPO_ROOT / ".cache" / "debs" / "erdma-bookworm"
    if not list(debs.glob("ibverbs-providers_*.deb")):
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["docker", "run", "--rm", "--user", "0", "--entrypoint", "sh", "-v", "%s:/out" % debs, ENGINE_IMAGE,
                        "-c", "apt-get update -qq && cd /out && apt-get download -qq libibverbs1 ibverbs-providers"],
                       check=True, capture_output=True, text=True)
    packages = sorted(path.name for path in debs.glob("*.deb"))
    served = serving_image()
    base, derived, builder = "llmops-test/engine-without-erdma:1", "llmops-test/engine-with-erdma:1", "llmops-test-erdma-purge"
    entrypoint = json.dumps(image(served)["Config"]["Entrypoint"])
    try:
        subprocess.run(["docker", "run", "--name", builder, "--user", "0", "--entrypoint", "sh", served, "-c",
                        "dpkg --purge --force-depends ibverbs-providers"], check=True, capture_output=True)
        subprocess.run(["docker", "commit", "--change", "ENTRYPOINT " + entrypoint, builder, base], check=True, capture_output=True)
        assert erdma_provider(served) and not erdma_provider(base)
        subprocess.run(["docker", "cp", "%s/." % debs, "%s:/tmp/llmops-test-erdma" % HEAD], check=True)
        arguments = {"state": "built", "name": derived, "base": base, "ray_requirement": "ray==2.60.0",
                     "pip_find_links": "/opt/wheelhouse/ray",
                     "erdma_packages": ["/tmp/llmops-test-erdma/" + name for name in packages]}
        completed = subprocess.run([str(REPO_ROOT / ".venv/bin/ansible"), HEAD, "-i", "inventories/sandbox", "-m",
                                    "llmops.inference.serving_image", "-a", json.dumps(arguments)],
                                   cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, completed.stdout[-3000:]
        assert "Ray 2.60.0 is in the engine image already" in completed.stdout
        assert [line for line in completed.stdout.splitlines() if "erdma verbs provider: " in line]
        provider = erdma_provider(derived)
        assert provider and provider[0].endswith("liberdma-rdmav34.so"), provider
        assert image(derived)["Config"]["Labels"]["org.llmops.erdma-packages"] == " ".join(packages)
        assert image(derived)["Config"]["Entrypoint"] == json.loads(entrypoint)
    finally:
        subprocess.run(["docker", "rm", "-f", builder], capture_output=True, check=False)
        subprocess.run(["docker", "exec", HEAD, "rm", "-rf", "/tmp/llmops-test-erdma"], capture_output=True, check=False)
        subprocess.run(["docker", "image", "rm", "-f", derived, base], capture_output=True, check=False)
