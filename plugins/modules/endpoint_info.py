#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: endpoint_info
short_description: Read the deployed endpoint - its API container as it runs, and the key it checks
version_added: 0.1.0
description:
  - Reads, on the node that serves the API, the endpoint's API container through the node's
    Docker Engine API - its state, image, image id, the spec hash label, the model folder it
    mounts and the C(--max-model-len) it was started with - and, when O(api_key_file) is given
    and the container exists, the API key kept in that file.
  - Changes nothing. The benchmark reads the endpoint with it before its first request.
  - RV(api_key) is the secret the endpoint checks; run the task with C(no_log).
author:
  - llmops.inference maintainers (@llmops)
options:
  container:
    description: The API container's name (the first instance's behind a balancer).
    type: str
    required: true
  url:
    description: The URL clients use, without C(/v1).
    type: str
    required: true
  model:
    description: The served model name.
    type: str
    required: true
  api_key_file:
    description: The 0600 file holding the API key on this node; empty reads no key.
    type: path
    default: ""
extends_documentation_fragment:
  - llmops.inference.docker_socket
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Read the endpoint's container, address and key
  llmops.inference.endpoint_info:
    container: vllm-serve
    url: http://10.0.0.11:8000
    model: qwen3-32b
    api_key_file: /var/lib/llmops-inference/secrets/vllm-api-key
  register: endpoint
  no_log: true
"""

RETURN = r"""
endpoint:
  description:
    - url, model, container, state (C(absent) when there is no such container), image, image_id,
      spec_hash, model_dir (the folder mounted at C(/model)) and max_model_len (null when not set).
  returned: always
  type: dict
api_key:
  description: The key in O(api_key_file); empty when no file is given, the container is absent or the file is missing.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._bench import deployed_endpoint
from ansible_collections.llmops.inference.plugins.module_utils._containers import DockerSocket


def read_key(path):
    """The key the file holds, or '' when it is not there."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            api_key_file=dict(type="path", default=""),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        inspect = DockerSocket(params["docker_host"]).inspect(params["container"])
    except (OSError, RuntimeError, ValueError) as error:
        module.fail_json(msg="cannot ask the Docker engine at %s: %s" % (params["docker_host"], error))
    endpoint = deployed_endpoint(inspect, params["url"], params["model"], params["container"])
    key = read_key(params["api_key_file"]) if params["api_key_file"] and inspect else ""
    module.exit_json(changed=False, endpoint=endpoint, api_key=key)


if __name__ == "__main__":
    main()
