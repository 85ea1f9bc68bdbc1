#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_listing
short_description: List a model's files with their sizes and hashes from a ModelScope or Hugging Face hub, or a folder
version_added: 0.1.0
description:
  - Asks a ModelScope hub (the public one or a mirror of it) for the file listing of O(model)
    at O(revision) - the same call the ModelScope client makes - and returns each file's path,
    size and SHA-256.
  - With O(source=huggingface) asks a Hugging Face hub (or a mirror of its API) for the model's
    info with file metadata - the call C(snapshot_download) makes. LFS files come with their
    SHA-256; small files stored in git only with their git blob id, returned as C(git_sha1).
  - With O(source=controller) it lists and hashes the folder O(path) on the host it runs on
    instead (the weights role delegates that to the control node, hence the name).
  - Fails with the hub's own message for an unknown model or revision, and refuses a listing
    without sizes or hashes, or with a path that would escape the model folder.
author:
  - llmops.inference maintainers (@llmops)
options:
  source:
    description: Where the listing comes from.
    type: str
    choices: [modelscope, huggingface, controller]
    default: modelscope
  model:
    description:
      - Model id, C(owner/name). Required with O(source=modelscope) and O(source=huggingface).
      - Ignored with O(source=controller); accepted so one C(module_defaults) for the
        C(llmops.inference.weights) group can give the model's identity to every weights module.
    type: str
  revision:
    description: Branch, tag or commit of the model.
    type: str
    default: master
  endpoint:
    description:
      - Base URL of the hub, with its scheme.
      - Defaults to C(https://modelscope.cn) or C(https://huggingface.co) by O(source).
    type: str
  token:
    description: Access token of the hub, for private or gated models.
    type: str
  path:
    description: Folder to list. Required with O(source=controller).
    type: path
  timeout:
    description: Seconds to wait for the hub.
    type: int
    default: 60
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: List Qwen3-8B at a pinned commit
  llmops.inference.model_listing:
    model: Qwen/Qwen3-8B
    revision: 1a2b3c4d
  register: listing

- name: List and hash a folder on the control node
  llmops.inference.model_listing:
    source: controller
    path: /srv/models/tiny
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: The model's files, sorted by path.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: Path inside the model folder.
      type: str
    size:
      description: Size in bytes.
      type: int
    sha256:
      description: SHA-256, lower-case hex (absent for a Hugging Face file stored in git).
      type: str
    git_sha1:
      description: Git blob id, lower-case hex; only for Hugging Face files not stored in LFS.
      type: str
total_bytes:
  description: Sum of the files' sizes.
  returned: success
  type: int
url:
  description: The listing URL asked.
  returned: when O(source) is a hub
  type: str
"""

import json
from urllib.parse import quote, urlencode

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.llmops.inference.plugins.module_utils._weights import (
    WeightsError,
    listing_of_directory,
    parse_huggingface_listing,
    parse_modelscope_listing,
)

DEFAULT_ENDPOINTS = {"modelscope": "https://modelscope.cn", "huggingface": "https://huggingface.co"}


def listing_url(params):
    owner_name = "/".join(quote(part, safe="") for part in params["model"].split("/"))
    if params["source"] == "huggingface":
        return "%s/api/models/%s/revision/%s?blobs=true" % (
            params["endpoint"], owner_name, quote(params["revision"], safe=""))
    return "%s/api/v1/models/%s/repo/files?%s" % (
        params["endpoint"], owner_name, urlencode({"Revision": params["revision"], "Recursive": "True"}))


def hub_message(error):
    """The hub's own words for an HTTP error (ModelScope: Message; Hugging Face: error)."""
    detail = error.headers.get("X-Error-Message") or error.read().decode("utf-8", "replace")
    try:
        document = json.loads(detail)
        detail = document.get("Message") or document.get("error") or detail
    except (ValueError, AttributeError):
        pass
    return detail[:300]


def fetch_hub_listing(params):
    url = listing_url(params)
    headers = {"Authorization": "Bearer %s" % params["token"]} if params["token"] else {}
    try:
        body = open_url(url, headers=headers, timeout=params["timeout"]).read()
    except HTTPError as error:
        hint = " (a private or gated model needs a token)" if error.code in (401, 403) else ""
        raise WeightsError("%s answered HTTP %d for %s@%s: %s%s"
                           % (params["endpoint"], error.code, params["model"], params["revision"], hub_message(error), hint))
    except (URLError, OSError) as error:
        raise WeightsError("cannot reach %s: %s" % (params["endpoint"], error))
    try:
        document = json.loads(body)
    except ValueError:
        raise WeightsError("%s did not answer JSON for the listing: %.200r" % (params["endpoint"], body))
    parse = parse_huggingface_listing if params["source"] == "huggingface" else parse_modelscope_listing
    return url, parse(document)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", choices=["modelscope", "huggingface", "controller"], default="modelscope"),
            model=dict(type="str"),
            revision=dict(type="str", default="master"),
            endpoint=dict(type="str"),
            token=dict(type="str", no_log=True),
            path=dict(type="path"),
            timeout=dict(type="int", default=60),
        ),
        required_if=[("source", "modelscope", ["model"]), ("source", "huggingface", ["model"]),
                     ("source", "controller", ["path"])],
        supports_check_mode=True,
    )
    params = module.params
    params["endpoint"] = (params["endpoint"] or DEFAULT_ENDPOINTS.get(params["source"], "")).rstrip("/")
    result = dict(changed=False)
    try:
        if params["source"] == "controller":
            files = listing_of_directory(params["path"])
        else:
            result["url"], files = fetch_hub_listing(params)
    except WeightsError as error:
        module.fail_json(msg=str(error), **result)
    module.exit_json(files=files, total_bytes=sum(item["size"] for item in files), **result)


if __name__ == "__main__":
    main()
