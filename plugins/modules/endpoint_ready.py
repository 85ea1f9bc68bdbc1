#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: endpoint_ready
short_description: Wait until an OpenAI-compatible endpoint (vLLM) really serves a model
version_added: 0.1.0
description:
  - Polls until three conditions hold at once - C(/health) answers 200, C(/v1/models)
    lists O(model), and (unless O(check_completion=false)) a one-token C(/v1/completions)
    request succeeds with the API key.
  - C(/health) alone turns green before the model is usable and stays green after a Ray
    worker is lost, so it is never taken as readiness by itself.
  - Fails after O(timeout) seconds naming the first condition not met and the last error seen.
  - Runs wherever it is delegated - on the controller or on the serving node.
  - With O(containers), it also watches the serving containers through the node's Docker
    socket at every poll. One that exited, is restarting, restarted since the wait began, was
    OOM killed, or runs in a network namespace its peer container left behind (it restarted)
    cannot become ready by waiting - the module fails at once with the container's state, exit
    code, restart count, vLLM's own error line and the last 40 log lines (the API key removed).
  - With O(report_every), it returns after that many seconds when not ready yet, with a
    RV(progress) line, so an C(until) loop shows progress while a long start goes on.
author:
  - llmops.inference maintainers (@llmops)
options:
  url:
    description: Base URL of the endpoint, without C(/v1).
    type: str
    required: true
  model:
    description: Served model name that C(/v1/models) must list.
    type: str
    required: true
  api_key:
    description: API key, sent as a bearer token in the C(Authorization) header. Never logged.
    type: str
  check_completion:
    description: Also require a one-token completion to succeed.
    type: bool
    default: true
  timeout:
    description: Seconds to wait in total before failing.
    type: int
    default: 600
  poll_interval:
    description: Seconds between polls.
    type: float
    default: 2
  request_timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 10
  validate_certs:
    description: Verify TLS certificates for https URLs.
    type: bool
    default: true
  containers:
    description: Names of the containers that serve the endpoint, watched at every poll.
    type: list
    elements: str
    default: []
  restart_counts:
    description:
      - RestartCount of each of O(containers) when the wait began, by name; one not named here
        starts from the count seen at this call's first poll.
      - A higher count during the wait means the container crashed and came back.
    type: dict
    default: {}
  docker_host:
    description: The Docker Engine API socket on the node, for O(containers).
    type: str
    default: unix:///var/run/docker.sock
  report_every:
    description:
      - Seconds after which to return, not ready yet, with a progress line; C(0) waits up to
        O(timeout) in one call.
      - The caller's C(until) loop (retries x O(report_every)) then bounds the whole wait.
    type: float
    default: 0
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Wait for the endpoint to serve the model
  llmops.inference.endpoint_ready:
    url: "http://{{ ansible_host }}:8000"
    model: qwen3-32b
    api_key: "{{ vllm_api_key }}"
    timeout: 900
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
ready:
  description: Whether every condition held within the timeout.
  returned: always
  type: bool
  sample: true
time_to_ready:
  description: Seconds from the module's start until the endpoint was ready.
  returned: success
  type: float
  sample: 41.7
ready_at:
  description: Epoch time (seconds) of the poll that found the endpoint ready.
  returned: success
  type: float
  sample: 1795000000.12
polls:
  description: Number of polls made.
  returned: always
  type: int
  sample: 21
models:
  description: Model ids the endpoint listed at the last poll that reached /v1/models.
  returned: always
  type: list
  elements: str
  sample: [qwen3-32b]
max_model_len:
  description: The max_model_len /v1/models reports for O(model), when it reports one.
  returned: always
  type: int
  sample: 32768
failed_condition:
  description:
    - The first condition not met at the last poll - V(health), V(model_listed), V(completion), or
      V(api_key) (the server answered 401 to the key; the module fails at once).
  returned: when not ready
  type: str
  sample: model_listed
key_mismatch:
  description: True when the server refused the key (401); the module fails at once.
  returned: when the server refused the key
  type: bool
last_error:
  description: The last error seen while polling.
  returned: always
  type: str
progress:
  description: One line - the condition still unmet and each watched container's state.
  returned: always
  type: str
  sample: "tiny-qwen not ready: health (GET /health: connection refused); vllm-serve running, 0 restart(s)"
container_problem:
  description:
    - Why a watched container cannot become ready - its name, V(reason), V(status), V(exit_code),
      V(oom_killed), V(restart_count), V(error), V(stale_network) (true when restarting it once
      repairs it), V(error_line) (vLLM's own error) and V(log_tail) (last 40 lines, key removed).
  returned: when a watched container failed
  type: dict
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

from ansible_collections.llmops.inference.plugins.module_utils._containers import (
    ContainerProblem,
    DockerSocket,
    container_problem,
    describe,
    error_line,
    network_peer,
    scrub,
    stale_network,
)
from ansible_collections.llmops.inference.plugins.module_utils._readiness import CONDITION_API_KEY, evaluate


def make_http(module):
    params = module.params
    headers = {"Accept": "application/json"}
    if params["api_key"]:
        headers["Authorization"] = "Bearer %s" % params["api_key"]

    def request(method, url, payload=None):
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request_headers = dict(headers)
        if data is not None:
            request_headers["Content-Type"] = "application/json"
        try:
            response = open_url(
                url,
                method=method,
                data=data,
                headers=request_headers,
                timeout=params["request_timeout"],
                validate_certs=params["validate_certs"],
                use_proxy=False,
            )
            return response.getcode(), response.read().decode("utf-8", "replace")
        except HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")

    return (lambda url: request("GET", url)), (lambda url, payload: request("POST", url, payload))


def watch(docker, params, baselines):
    """(problem dict or None, states phrase) for the watched containers.

    baselines: name -> RestartCount the wait started from; a container not in
    O(restart_counts) gets the count of its first poll.
    """
    phrases = []
    for name in params["containers"]:
        inspect = docker.inspect(name)
        if inspect is not None:
            baselines.setdefault(name, inspect.get("RestartCount", 0))
        problem = container_problem(name, inspect, int(baselines.get(name, 0)))
        if problem is None and network_peer(inspect):
            stale = stale_network(inspect, docker.inspect(network_peer(inspect)))
            if stale:
                problem = ContainerProblem(name, stale, inspect, stale_network=True)
        if problem is not None:
            found = problem.as_dict()
            found["log_tail"] = scrub(docker.log_tail(name), [params["api_key"]])
            found["error_line"] = error_line(found["log_tail"])
            return found, ""
        phrases.append("%s %s" % (name, describe(inspect)))
    return None, "; ".join(phrases)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            api_key=dict(type="str", no_log=True),
            check_completion=dict(type="bool", default=True),
            timeout=dict(type="int", default=600),
            poll_interval=dict(type="float", default=2),
            request_timeout=dict(type="float", default=10),
            validate_certs=dict(type="bool", default=True),
            containers=dict(type="list", elements="str", default=[]),
            restart_counts=dict(type="dict", default={}),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
            report_every=dict(type="float", default=0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] < 0 or params["poll_interval"] <= 0 or params["report_every"] < 0:
        module.fail_json(msg="timeout and report_every must be >= 0 and poll_interval > 0 (got %s, %s and %s)"
                         % (params["timeout"], params["report_every"], params["poll_interval"]))
    docker = DockerSocket(params["docker_host"]) if params["containers"] else None
    http_get, http_post = make_http(module)
    started = time.time()
    baselines = dict((name, int(count)) for name, count in params["restart_counts"].items())
    window = params["report_every"] or params["timeout"]
    deadline = started + min(params["timeout"], window)
    polls = 0
    while True:
        polls += 1
        poll = evaluate(http_get, http_post, params["url"], params["model"], params["check_completion"])
        problem, states = (None, "")
        if not poll.ready and docker is not None:
            try:
                problem, states = watch(docker, params, baselines)
            except (OSError, RuntimeError, ValueError) as error:
                module.fail_json(msg="cannot watch the serving containers through %s: %s" % (params["docker_host"], error))
        now = time.time()
        progress = "%s ready" % params["model"] if poll.ready else "%s not ready: %s (%s)%s" % (
            params["model"], poll.failed_condition, poll.error, "; " + states if states else "")
        result = dict(
            changed=False,
            ready=poll.ready,
            polls=polls,
            models=sorted(poll.models),
            max_model_len=poll.models.get(params["model"]),
            last_error=poll.error,
            progress=progress,
        )
        if not poll.ready:
            result["failed_condition"] = poll.failed_condition
        if poll.ready:
            module.exit_json(time_to_ready=round(now - started, 3), ready_at=now, **result)
        if poll.failed_condition == CONDITION_API_KEY:
            module.fail_json(
                msg="endpoint %s: %s. A key mismatch, reported at once (no wait would end it): the running server "
                    "holds another key than the one this run sends (the key file's)." % (params["url"], poll.error),
                key_mismatch=True,
                **result
            )
        if problem is not None:
            module.fail_json(
                msg="serving container %s %s: %s.%s Its last %d log lines are in container_problem.log_tail."
                % (problem["name"], "runs but cannot serve" if problem["stale_network"] else "will not become ready",
                   problem["reason"],
                   " vLLM said: %s." % problem["error_line"] if problem["error_line"] else "", len(problem["log_tail"])),
                container_problem=problem,
                **result
            )
        if params["report_every"]:
            # A window: poll until its end, then hand back a progress line.
            if now >= deadline:
                module.exit_json(msg="not ready yet: " + progress, **result)
            time.sleep(min(params["poll_interval"], deadline - now))
            continue
        if now + params["poll_interval"] > deadline:
            module.fail_json(
                msg="endpoint %s not ready after %ss: condition '%s' not met: %s"
                % (params["url"], params["timeout"], poll.failed_condition, poll.error),
                **result
            )
        time.sleep(params["poll_interval"])


if __name__ == "__main__":
    main()
