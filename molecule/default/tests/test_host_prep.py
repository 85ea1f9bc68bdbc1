"""Real state of nodes converged by the host_prep role (molecule/default)."""

from __future__ import annotations

import json

SYSCTL_FILE = "/etc/sysctl.d/90-llmops-inference.conf"
LIMITS_FILE = "/etc/security/limits.d/90-llmops-inference.conf"
SYSTEMD_LIMITS_FILE = "/etc/systemd/system.conf.d/90-llmops-inference.conf"
# prepare.yml makes them servers as operators have them.
TIMESYNCD_NODE, DOCKER_CE_NODE = "llmops-default-worker-1", "llmops-default-worker-2"


def test_node_runs_systemd_as_pid1(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_packages_installed_and_the_operators_engine_and_time_daemon_kept(host):
    for name in ("python3-requests", "pciutils", "kmod"):
        assert host.package(name).is_installed, name
    node = host.backend.hostname
    # Docker CE's node keeps it: docker.io was not installed over it (apt would remove docker-ce).
    engine = "docker-ce" if node == DOCKER_CE_NODE else "docker.io"
    assert host.package(engine).is_installed and not host.package({"docker-ce": "docker.io"}.get(engine, "docker-ce")).is_installed
    # The node with its own time daemon keeps it, and gets no chrony and no chrony sources.
    if node == TIMESYNCD_NODE:
        assert host.package("systemd-timesyncd").is_installed and not host.package("chrony").is_installed
        assert not host.file("/etc/chrony/sources.d/llmops-inference.sources").exists
    else:
        assert host.package("chrony").is_installed


def test_kernel_settings_written(host):
    settings = host.file(SYSCTL_FILE)
    assert settings.exists and settings.mode == 0o644
    lines = {line.replace(" ", "") for line in settings.content_string.splitlines() if not line.startswith("#")}
    for expected in (
        "vm.max_map_count=1048576",
        "kernel.shmmax=68719476736",
        "net.core.somaxconn=4096",
    ):
        assert expected in lines, expected
    # sysctl itself must accept the file (syntax and key names), even where /proc/sys is
    # read-only: --dry-run is not in procps 4.0.2, so parse with -N on each key.
    for line in lines:
        key = line.split("=", 1)[0]
        assert host.run(f"sysctl -N {key}").rc == 0, key


def test_session_limits(host):
    limits = host.file(LIMITS_FILE)
    assert limits.mode == 0o644
    rows = {tuple(line.split()) for line in limits.content_string.splitlines() if line and not line.startswith("#")}
    assert ("*", "hard", "memlock", "unlimited") in rows
    assert ("root", "soft", "nofile", "1048576") in rows
    assert ("*", "soft", "stack", "65536") in rows


def test_service_limits_loaded_by_systemd(host):
    assert "DefaultLimitMEMLOCK=infinity" in host.file(SYSTEMD_LIMITS_FILE).content_string
    # The handler re-executed the manager, so systemd itself reports the new default.
    shown = host.run("systemctl show --property DefaultLimitNOFILE").stdout.strip()
    assert shown == "DefaultLimitNOFILE=1048576", shown


def test_daemon_json_merged_not_overwritten(host):
    merged = json.loads(host.file("/etc/docker/daemon.json").content_string)
    if host.backend.hostname == DOCKER_CE_NODE:
        # The operator's journald logging keeps its own options: json-file's max-size would
        # stop dockerd from starting.
        assert merged == {"log-driver": "journald", "log-opts": {"tag": "{{.Name}}"}, "live-restore": True}
        return
    # The operator's keys survive with their values ...
    assert merged["registry-mirrors"] == ["https://mirror.llmops.test"]
    assert merged["log-opts"]["labels"] == "team"
    assert merged["log-opts"]["max-size"] == "10m"
    # ... and the role's keys are added where the operator set none.
    assert merged["log-opts"]["max-file"] == "3"
    assert merged["log-driver"] == "json-file"
    assert merged["live-restore"] is True
    # The operator's original file is kept as a backup next to it.
    backups = host.run("ls /etc/docker/").stdout.split()
    originals = [name for name in backups if name.startswith("daemon.json.") and name != "daemon.json"]
    assert len(originals) == 1, backups
    original = json.loads(host.file(f"/etc/docker/{originals[0]}").content_string)
    assert original["log-opts"] == ({"tag": "{{.Name}}"} if host.backend.hostname == DOCKER_CE_NODE
                                    else {"max-size": "10m", "labels": "team"})


def test_data_root(host):
    root = host.file("/srv/llmops")
    assert root.is_directory and root.user == "root" and root.mode == 0o755


def test_chrony_sources(host):
    if host.backend.hostname == TIMESYNCD_NODE:
        return  # checked above: no chrony there
    sources = host.file("/etc/chrony/sources.d/llmops-inference.sources").content_string
    assert "server ntp1.llmops.test iburst" in sources
    assert "server ntp2.llmops.test iburst" in sources
    # chronyd accepts the configuration (parse only, no clock changes).
    assert host.run("chronyd -p").rc == 0
