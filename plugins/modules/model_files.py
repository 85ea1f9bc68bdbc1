#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_files
short_description: Check, stage and atomically publish a model's verified files on a node
version_added: 0.1.0
description:
  - The serving path O(path) is a symlink to a published copy under C(<path>.revisions/),
    whose completion marker (C(.llmops-weights.json)) records source, model, revision, and
    each file's size, SHA-256 (git blob id for small Hugging Face files) and modification time.
  - O(state=checked) reads only. The model counts as complete when the marker names the
    wanted source, model and revision and every file still has its recorded size and
    modification time - a rerun costs a C(stat) per file, not a re-hash of the weights.
    O(full_verify) re-hashes every file. Given O(files) (a hub listing) it also compares the
    hashes and reports the bytes a fetch still needs and the free bytes on the filesystem.
  - O(state=staged) prepares C(<path>.revisions/<revision>.staging/) for a fetch - keeps
    finished files and partial C(.incomplete) data, hard-links verified unchanged files from
    published copies, removes files the listing no longer has - and returns what to fetch.
  - O(state=published) checks every staged file's size, hashes each one that is not a hard
    link of an already verified file, writes the marker, renames staging into place and swaps
    the symlink in one atomic C(rename). A file that fails is removed from staging so the next
    run fetches it again. The previously published copy is kept (a running server may have
    it mounted); older ones are removed.
  - A O(path) that exists but was not placed by this module (a real folder, a foreign link)
    is never changed; O(state=checked) reports it as RV(foreign).
author:
  - llmops.inference maintainers (@llmops)
options:
  path:
    description: The serving path of the model on this node.
    type: path
    required: true
  state:
    description: What to do; see the description.
    type: str
    choices: [checked, staged, published]
    default: checked
  source:
    description: Where the files come from; recorded in the marker.
    type: str
    required: true
  model:
    description: Model id; recorded in the marker.
    type: str
    required: true
  revision:
    description: Model revision; recorded in the marker and part of the staging folder's name.
    type: str
    required: true
  files:
    description:
      - The listing (as returned by M(llmops.inference.model_listing)) - C(path), C(size), C(sha256)
        (or C(git_sha1), for the small files a Hugging Face listing knows only by their git blob id).
      - Required with O(state=staged) and O(state=published).
    type: list
    elements: dict
  full_verify:
    description: With O(state=checked), re-hash every published file instead of trusting size and mtime.
    type: bool
    default: false
attributes:
  check_mode:
    description: O(state=checked) only reads; the other states report what they would change and change nothing.
    support: full
  diff_mode:
    description: Reports counts, not a diff.
    support: none
"""

EXAMPLES = r"""
- name: Is the model already here?
  llmops.inference.model_files:
    path: /data/llmops/models/Qwen3-8B
    source: modelscope
    model: Qwen/Qwen3-8B
    revision: 1a2b3c4d
  register: weights_state

- name: Prepare staging for a fetch
  llmops.inference.model_files:
    path: /data/llmops/models/Qwen3-8B
    state: staged
    source: modelscope
    model: Qwen/Qwen3-8B
    revision: 1a2b3c4d
    files: "{{ listing.files }}"
  register: staged
"""

RETURN = r"""
complete:
  description: The wanted model is published and unchanged (O(state=checked)).
  returned: O(state=checked)
  type: bool
foreign:
  description: O(path) exists but was not placed by this module; it is left alone.
  returned: O(state=checked)
  type: bool
changed_files:
  description: Published files whose size, mtime (or hash) no longer match, or that the listing changed.
  returned: O(state=checked)
  type: list
  elements: str
published_dir:
  description: The published copy O(path) points to (after O(state=published), the new one).
  returned: always
  type: str
published_revision:
  description: Revision recorded in the published copy's marker.
  returned: O(state=checked)
  type: str
free_bytes:
  description: Free bytes on the filesystem that holds C(<path>.revisions).
  returned: O(state=checked)
  type: int
bytes_needed:
  description: Bytes a fetch of O(files) would still write here (reused and staged data excluded).
  returned: when O(files) is given
  type: int
total_bytes:
  description: Size of the whole model per O(files).
  returned: when O(files) is given
  type: int
to_fetch:
  description: Files staging still lacks (O(state=staged)).
  returned: O(state=staged)
  type: list
  elements: str
staged_bytes:
  description: Bytes already in staging, partial files included.
  returned: O(state=staged)
  type: int
staging_dir:
  description: The staging folder.
  returned: O(state=staged)
  type: str
hashed_bytes:
  description: Bytes read to compute SHA-256 in this call.
  returned: O(state=checked) and O(state=published)
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._weights import (
    WeightsError,
    check,
    checked_relative_path,
    plan_fetch,
    publish,
    stage,
    staging_dir,
)


def listed_files(module):
    files = []
    for item in module.params["files"] or []:
        try:
            entry = {"path": checked_relative_path(item.get("path")), "size": int(item["size"])}
            hash_key = "sha256" if item.get("sha256") else "git_sha1"
            entry[hash_key] = str(item[hash_key]).lower()
            files.append(entry)
        except (KeyError, TypeError, ValueError, WeightsError) as error:
            module.fail_json(msg="files: each entry needs path, size and sha256 (or git_sha1) (%s): %r" % (error, item))
    return files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["checked", "staged", "published"], default="checked"),
            source=dict(type="str", required=True),
            model=dict(type="str", required=True),
            revision=dict(type="str", required=True),
            files=dict(type="list", elements="dict"),
            full_verify=dict(type="bool", default=False),
        ),
        required_if=[("state", "staged", ["files"]), ("state", "published", ["files"])],
        supports_check_mode=True,
    )
    params = module.params
    weights_dir = params["path"].rstrip("/")
    wanted = {key: params[key] for key in ("source", "model", "revision")}
    files = listed_files(module) if params["files"] is not None else None
    try:
        if params["state"] == "checked":
            result = check(weights_dir, wanted, files, params["full_verify"])
            module.exit_json(changed=False, **result)
        if module.check_mode:
            plan = plan_fetch(weights_dir, params["revision"], files)
            plan.pop("reusable")
            module.exit_json(changed=True, staging_dir=staging_dir(weights_dir, params["revision"]), **plan)
        if params["state"] == "staged":
            plan = stage(weights_dir, params["revision"], files)
            module.exit_json(**plan)
        module.exit_json(changed=True, **publish(weights_dir, wanted, files))
    except WeightsError as error:
        module.fail_json(msg="%s: %s" % (weights_dir, error))
    except OSError as error:
        module.fail_json(msg="%s: %s" % (weights_dir, error))


if __name__ == "__main__":
    main()
