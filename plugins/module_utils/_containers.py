# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watching serving containers while waiting for readiness: is each one still a candidate?

A container that exited, is restarting, restarted since the wait began, or was OOM killed
will not become ready by waiting: the wait stops at once and shows the evidence (state, exit
code, restarts, the last log lines). The decisions are pure functions over `docker inspect`
documents; DockerSocket is the small Engine API client that fetches them on the node (and
the image and container listing serving_info reports).
"""

from __future__ import annotations

import json
import re
import socket
import struct

from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.parse import quote

LOG_TAIL_LINES = 40
# vLLM's own reason for exiting, most specific first: argparse's "error:", then exceptions.
ERROR_LINE_PATTERNS = (
    re.compile(r"\berror: .+"),
    re.compile(r"\b[A-Za-z_.]*(Error|Exception)\b.*"),
    re.compile(r"Fatal Python error.*"),
)


class ContainerProblem:
    """Why a container will not become ready, with what `docker inspect` showed."""

    def __init__(self, name, reason, inspect=None, stale_network=False):
        state = (inspect or {}).get("State") or {}
        self.name = name
        self.reason = reason
        # True when restarting the container once repairs it (see stale_network).
        self.stale_network = stale_network
        self.status = state.get("Status", "missing")
        self.exit_code = state.get("ExitCode")
        self.oom_killed = bool(state.get("OOMKilled"))
        self.restart_count = (inspect or {}).get("RestartCount", 0)
        self.error = state.get("Error", "")

    def as_dict(self):
        return dict(
            name=self.name, reason=self.reason, status=self.status, exit_code=self.exit_code,
            oom_killed=self.oom_killed, restart_count=self.restart_count, error=self.error,
            stale_network=self.stale_network,
        )


def container_problem(name, inspect, restarts_before):
    """A ContainerProblem when the container cannot become ready by waiting, else None.

    inspect is the `docker inspect` document (None: the container is gone); restarts_before is
    its RestartCount when the wait began.
    """
    if inspect is None:
        return ContainerProblem(name, "the container no longer exists")
    state = inspect.get("State") or {}
    restarts = inspect.get("RestartCount", 0) - restarts_before
    if state.get("OOMKilled"):
        return ContainerProblem(name, "it was killed for lack of memory (OOM)", inspect)
    if state.get("Restarting"):
        return ContainerProblem(name, "it is restarting after exit code %s" % state.get("ExitCode"), inspect)
    if not state.get("Running"):
        return ContainerProblem(name, "it is %s (exit code %s)" % (state.get("Status", "stopped"), state.get("ExitCode")), inspect)
    if restarts > 0:
        return ContainerProblem(name, "it restarted %d time(s) while waiting" % restarts, inspect)
    return None


def describe(inspect):
    """One short phrase for the progress line: 'running, 0 restarts'."""
    if inspect is None:
        return "missing"
    state = inspect.get("State") or {}
    return "%s, %d restart(s)" % (state.get("Status", "unknown"), inspect.get("RestartCount", 0))


def network_peer(inspect):
    """The container whose network namespace this one joined (network_mode container:<id>), or None."""
    mode = ((inspect or {}).get("HostConfig") or {}).get("NetworkMode") or ""
    return mode[len("container:"):] if mode.startswith("container:") else None


def stale_network(inspect, peer_inspect):
    """Why a container's network is stale, or None.

    A container started with network_mode container:<peer> keeps the namespace the peer had at
    that moment: when the peer restarts later, the container runs on in a dead namespace and
    can never be reached. Restarting the container joins the peer's current namespace.
    """
    if network_peer(inspect) is None or peer_inspect is None:
        return None
    started = (inspect.get("State") or {}).get("StartedAt", "")
    peer_started = (peer_inspect.get("State") or {}).get("StartedAt", "")
    # Docker's timestamps are RFC 3339 in UTC with the same precision: they sort as text.
    if peer_started and started and peer_started > started:
        return ("it shares the network of %s, which restarted at %s after this container started at %s"
                % (peer_inspect.get("Name", "?").lstrip("/"), peer_started, started))
    return None


def decode_log_stream(raw):
    """Text of a `GET /containers/{id}/logs` body: multiplexed frames (no TTY) or plain."""
    chunks = []
    offset = 0
    while offset + 8 <= len(raw) and raw[offset] in (0, 1, 2) and raw[offset + 1:offset + 4] == b"\0\0\0":
        size = struct.unpack(">I", raw[offset + 4:offset + 8])[0]
        chunks.append(raw[offset + 8:offset + 8 + size])
        offset += 8 + size
    if offset < len(raw):
        chunks.append(raw[offset:])
    return b"".join(chunks).decode("utf-8", "replace")


def scrub(lines, secrets):
    """Lines with every secret replaced by ********."""
    secrets = [secret for secret in secrets if secret]
    cleaned = []
    for line in lines:
        for secret in secrets:
            line = line.replace(secret, "********")
        cleaned.append(line)
    return cleaned


def error_line(lines):
    """The last line that states vLLM's own error, or ''."""
    for pattern in ERROR_LINE_PATTERNS:
        for line in reversed(lines):
            match = pattern.search(line)
            if match:
                return line.strip()
    return ""


class _UnixHTTPConnection(http_client.HTTPConnection):
    def __init__(self, path, timeout):
        http_client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class DockerSocket:
    """The few Engine API calls the watch needs, over the node's unix socket."""

    def __init__(self, docker_host, timeout=10):
        if not docker_host.startswith("unix://"):
            raise ValueError("docker_host must be a unix:// socket, got %s" % docker_host)
        self._path = docker_host[len("unix://"):]
        self._timeout = timeout

    def _get(self, path):
        connection = _UnixHTTPConnection(self._path, self._timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def inspect(self, name):
        """The container's inspect document, or None when it does not exist."""
        status, body = self._get("/containers/%s/json" % quote(name, safe=""))
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError("docker inspect %s answered %s: %s" % (name, status, body[:200]))
        return json.loads(body)

    def image_id(self, name):
        """The id of the local image name, or "" when the node does not have it."""
        status, body = self._get("/images/%s/json" % quote(name, safe=""))
        if status == 404:
            return ""
        if status != 200:
            raise RuntimeError("docker image inspect %s answered %s: %s" % (name, status, body[:200]))
        return json.loads(body)["Id"]

    def containers_labelled(self, label):
        """Every container (running or not) carrying label (KEY=VALUE), as `docker ps -a` lists them."""
        filters = quote(json.dumps({"label": [label]}), safe="")
        status, body = self._get("/containers/json?all=1&filters=%s" % filters)
        if status != 200:
            raise RuntimeError("docker ps answered %s: %s" % (status, body[:200]))
        return json.loads(body)

    def log_tail(self, name, lines=LOG_TAIL_LINES):
        status, body = self._get("/containers/%s/logs?stdout=1&stderr=1&tail=%d" % (quote(name, safe=""), lines))
        if status != 200:
            return ["(no log: docker answered %s)" % status]
        return decode_log_stream(body).splitlines()[-lines:]
