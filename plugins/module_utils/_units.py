# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions for a transient systemd unit (systemd-run): what to run, and whether to attach."""

from __future__ import annotations


def parse_show(text):
    """`systemctl show --property ...` output as a dict (KEY=VALUE lines)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def should_attach(state, unit_status):
    """With state=started, a run finds its unit still running and attaches to it instead of
    starting a second one; a finished or failed unit is started again."""
    return state == "started" and unit_status.get("SubState") == "running"


def systemd_run_argv(systemd_run, name, command, properties, remain_after_exit, env_file):
    """The systemd-run command line; the environment travels in env_file, never on it."""
    argv = [systemd_run, "--quiet", "--unit", name]
    if remain_after_exit:
        argv.append("--remain-after-exit")
    merged = dict(properties)
    if env_file:
        # Type=exec: systemd-run returns once the command runs, its environment file read.
        merged.update({"Type": "exec", "EnvironmentFile": env_file})
    for key in sorted(merged):
        argv += ["--property", "%s=%s" % (key, merged[key])]
    return argv + ["--"] + list(command)


def environment_file_text(environment):
    """KEY=VALUE lines systemd reads; a value with a newline cannot be written safely."""
    lines = []
    for key in sorted(environment):
        value = "" if environment[key] is None else str(environment[key])
        if "\n" in value or "\n" in key or not key:
            raise ValueError("environment variable %r cannot hold a newline or be empty" % key)
        lines.append("%s=%s" % (key, value))
    return "".join(line + "\n" for line in lines)
