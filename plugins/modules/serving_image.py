#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the serving image once, and check and tag the copy another node loaded."""

from __future__ import annotations

DOCUMENTATION = r"""
module: serving_image
short_description: Derive the serving image from the engine image; check the copy another node loaded
description:
  - C(state=built) derives O(name) from the engine image O(base) (present on the node) by adding
    O(erdma_packages) where given and O(ray_requirement) inside a container of it (pip, or uv
    where the image has no pip) and
    committing the result with the engine image's entrypoint and command. Labels record the
    engine image's ID and the requirement; an image of that name built from the same engine
    image ID is kept (changed=false).
  - C(state=loaded) runs on a node the role's image_fetch.py copied the image to (it loads the
    build node's archive while it arrives and checks its SHA-256). It checks that the node holds
    O(image_id), tags it O(name) and removes what the copy kept in O(archive_dir). A node that
    holds O(image_id) tagged O(name) already changes nothing.
  - Uses the docker CLI of the node; O(docker_host) points it at another engine.
version_added: "0.1.0"
author:
  - llmops.inference maintainers (@llmops)
options:
  state:
    description: What to do.
    type: str
    choices: [built, loaded]
    required: true
  name:
    description: The serving image's name (llmops_plan.image).
    type: str
    required: true
  base:
    description: The engine image it is derived from (C(state=built)).
    type: str
    default: ""
  ray_requirement:
    description: The pinned Ray requirement to add (C(state=built)), e.g. C(ray==2.60.0).
    type: str
    default: ""
  pip_find_links:
    description:
      - A folder of wheels on the node; the build installs from it alone, with no network
        (C(state=built)). Empty uses O(pip_index_url) or the installer's default index.
    type: path
    default: ""
  pip_index_url:
    description: The package index the build installs from (C(state=built)); empty for the default.
    type: str
    default: ""
  erdma_packages:
    description:
      - eRDMA user-space packages on the node (.deb or .rpm; C(state=built)). Installed offline
        in the build when the engine image has no erdma verbs provider; the build fails when
        the provider is still missing after them.
    type: list
    elements: path
    default: []
  archive_dir:
    description: The folder the copy kept its partial archive in (C(state=loaded)); removed.
    type: path
    default: ""
  image_id:
    description: The image ID the loaded image must have (C(state=loaded)).
    type: str
    default: ""
  timeout:
    description: Seconds the build may take.
    type: int
    default: 3600
  docker_host:
    description: DOCKER_HOST for every docker command (another engine); empty for the node's own.
    type: str
    default: ""
notes:
  - Supports check mode (reports what would change, changes nothing).
"""

EXAMPLES = r"""
- name: Derive the serving image with Ray at the cluster's pin
  llmops.inference.serving_image:
    state: built
    name: "{{ llmops_plan.image }}"
    base: "{{ llmops_plan.engine_image }}"
    ray_requirement: ray==2.60.0
"""

RETURN = r"""
image_id:
  description: The serving image's ID on the node (empty in check mode before a build).
  returned: always
  type: str
log_tail:
  description: The build's last lines.
  returned: when state is built and a build ran
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._images import BUILD_SCRIPT

ENGINE_ID_LABEL = "org.llmops.engine-id"
WHEELS_IN_BUILD = "/tmp/llmops-wheels"
ERDMA_IN_BUILD = "/tmp/llmops-erdma"  # BUILD_SCRIPT installs what it finds there
# What roles/serving_image/files/image_fetch.py keeps in the transfer folder.
FETCH_FILES = ("image.tar.part", "image.tar.source", "fetched.json")


class Docker:
    """The docker CLI of the node (or of O(docker_host)), each call bounded by coreutils' timeout."""

    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path("docker", required=True)
        self.timeout = module.get_bin_path("timeout")
        self.environ = {"DOCKER_HOST": module.params["docker_host"]} if module.params["docker_host"] else {}

    def run(self, *args, bounded=False, check=True):
        argv = ([self.timeout, "--kill-after=10", str(self.module.params["timeout"])] if bounded and self.timeout else [])
        rc, out, err = self.module.run_command(argv + [self.binary] + list(args), environ_update=self.environ)
        if check and rc != 0:
            self.module.fail_json(msg="docker %s failed (exit %d): %s" % (args[0], rc, (err or out).strip()[-2000:]))
        return rc, out, err

    def inspect(self, image):
        """The image's inspect document, or None when the engine does not hold it."""
        rc, out, _err = self.run("image", "inspect", image, check=False)
        return json.loads(out)[0] if rc == 0 else None


def build(module, docker):
    params = module.params
    base = docker.inspect(params["base"])
    if base is None and module.check_mode:  # check mode did not pull it
        module.exit_json(changed=True, image_id="")
    if base is None:
        module.fail_json(msg="The engine image %s is not on this node: it is pulled before the build." % params["base"])
    current = docker.inspect(params["name"])
    labels = ((current or {}).get("Config") or {}).get("Labels") or {}
    if current and labels.get(ENGINE_ID_LABEL) == base["Id"]:
        module.exit_json(changed=False, image_id=current["Id"])
    if module.check_mode:
        module.exit_json(changed=True, image_id="")
    config = base.get("Config") or {}
    builder = "llmops-image-build-%s" % uuid.uuid4().hex[:8]
    source = ["--no-index", "--find-links", WHEELS_IN_BUILD] if params["pip_find_links"] else (
        ["--index-url", params["pip_index_url"]] if params["pip_index_url"] else [])
    # Offline when the wheels are copied in: nothing but them can be installed.
    network = ["--network", "none"] if params["pip_find_links"] else []
    docker.run("create", "--name", builder, "--user", "0", "--entrypoint", "/bin/sh", *network, params["base"],
               "-c", BUILD_SCRIPT, "llmops-build", params["ray_requirement"], *source)
    try:
        if params["pip_find_links"]:
            docker.run("cp", params["pip_find_links"].rstrip("/") + "/.", "%s:%s" % (builder, WHEELS_IN_BUILD))
        if params["erdma_packages"]:
            with tempfile.TemporaryDirectory() as packages:  # exactly the packages named, nothing else
                for path in params["erdma_packages"]:
                    shutil.copy(path, packages)
                docker.run("cp", packages + "/.", "%s:%s" % (builder, ERDMA_IN_BUILD))
        rc, out, err = docker.run("start", "--attach", builder, bounded=True, check=False)
        log_tail = (out + err).strip().splitlines()[-30:]
        if rc != 0:
            added = params["ray_requirement"] + (" and the eRDMA packages" if params["erdma_packages"] else "")
            module.fail_json(msg="Adding %s to %s failed (exit %d); the engine image is unchanged. The build's last lines:\n%s"
                             % (added, params["base"], rc, "\n".join(log_tail)), log_tail=log_tail)
        # The build ran as root with its own entrypoint: the engine image's user, entrypoint and
        # command come back, so the derived image starts exactly as the engine image did.
        changes = ["ENTRYPOINT %s" % json.dumps(config.get("Entrypoint") or []),
                   "CMD %s" % json.dumps(config.get("Cmd") or []),
                   "USER %s" % (config.get("User") or "root"),
                   "LABEL %s=%s org.llmops.engine-image=%s org.llmops.ray-requirement=%s org.llmops.erdma-packages=%s"
                   % (ENGINE_ID_LABEL, base["Id"], json.dumps(params["base"]), json.dumps(params["ray_requirement"]),
                      json.dumps(" ".join(os.path.basename(path) for path in params["erdma_packages"])))]
        argv = ["commit"]
        for change in changes:
            argv += ["--change", change]
        docker.run(*(argv + [builder, params["name"]]), bounded=True)
    finally:
        docker.run("rm", "-f", builder, check=False)
    module.exit_json(changed=True, image_id=docker.inspect(params["name"])["Id"], log_tail=log_tail)


def load(module, docker):
    """The copy image_fetch.py loaded: the build node's image ID, tagged with the serving image's name."""
    params = module.params
    present = docker.inspect(params["image_id"])
    if present is None and module.check_mode:
        module.exit_json(changed=True, image_id="")
    if present is None:
        module.fail_json(msg="%s (image %s) is not on this node after the copy from the build node; "
                             "read the copy's journal (journalctl -u llmops-image-fetch) and rerun (--tags image)."
                         % (params["name"], params["image_id"]))
    tagged = params["name"] in (present.get("RepoTags") or [])
    if not tagged and not module.check_mode:
        docker.run("tag", params["image_id"], params["name"])
    if params["archive_dir"] and not module.check_mode:
        remove_transfer(params["archive_dir"])
    module.exit_json(changed=not tagged, image_id=params["image_id"])


def remove_transfer(directory):
    """Remove what the copy kept, and its folder once empty."""
    for name in FETCH_FILES:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(directory)
    except OSError:
        pass  # absent, or holds something this module did not put there


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["built", "loaded"], required=True),
            name=dict(type="str", required=True),
            base=dict(type="str", default=""),
            ray_requirement=dict(type="str", default=""),
            pip_find_links=dict(type="path", default=""),
            pip_index_url=dict(type="str", default=""),
            erdma_packages=dict(type="list", elements="path", default=[]),
            archive_dir=dict(type="path", default=""),
            image_id=dict(type="str", default=""),
            timeout=dict(type="int", default=3600),
            docker_host=dict(type="str", default=""),
        ),
        required_if=[("state", "built", ("base", "ray_requirement")), ("state", "loaded", ("image_id",))],
        supports_check_mode=True,
    )
    docker = Docker(module)
    {"built": build, "loaded": load}[module.params["state"]](module, docker)


if __name__ == "__main__":
    main()
