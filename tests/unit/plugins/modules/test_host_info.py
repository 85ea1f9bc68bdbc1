"""host_info with dpkg-query answered from a queue (output captured on Debian 12) and real files."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._files import (
    apt_removals,
    defaults_under,
    merged_json_text,
    missing_packages,
    provided_by,
)
from ansible_collections.llmops.inference.plugins.modules import host_info
from conftest import fixture_text

# dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n' docker.io chrony kmod nosuchpkg, on bookworm:
# chrony was removed but its configuration kept (rc), nosuchpkg is unknown (stderr, rc 1).
DPKG_QUERY = "docker.io ii \nchrony rc \nkmod ii \n"
DPKG_STDERR = "dpkg-query: no packages found matching nosuchpkg\n"


@pytest.fixture
def dpkg(monkeypatch):
    from ansible.module_utils import basic

    calls = []

    def run_command(self, argv, **_kwargs):
        calls.append(argv)
        if argv[0].endswith("apt-get"):
            return 0, "Reading package lists...\nInst chrony (4.3-2+deb12u3 Debian:12.15/oldstable [amd64])\n", ""
        return 1, DPKG_QUERY, DPKG_STDERR

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    return calls


def test_missing_packages_and_a_daemon_json_that_cannot_be_merged(tmp_path, dpkg, run_module):
    good, bad, broken = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "broken.json"
    good.write_text('{"live-restore": true}')
    bad.write_text('["a list"]')
    broken.write_text("{not json")
    result, failed = run_module(host_info.main, {
        "packages": ["docker.io", "chrony", "kmod", "nosuchpkg"],
        "json_objects": [str(good), str(bad), str(broken), str(tmp_path / "absent.json")]})
    assert not failed and not result["changed"]
    assert result["missing_packages"] == ["chrony", "nosuchpkg"]
    assert dpkg[0] == ["/usr/bin/dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n",
                       "docker.io", "chrony", "kmod", "nosuchpkg"]
    # What installing them would remove, from apt's simulation (nothing changes).
    assert dpkg[1] == ["/usr/bin/apt-get", "-s", "-o", "Debug::NoLocking=1", "install", "chrony", "nosuchpkg"]
    assert result["would_remove"] == [] and result["provided"] == {"docker.io": "docker.io", "kmod": "kmod"}
    assert sorted(result["json_problems"]) == sorted([str(bad), str(broken)])
    assert "is not a JSON object; it was left untouched" in result["json_problems"][str(bad)]
    assert "is not valid JSON" in result["json_problems"][str(broken)]


def test_nothing_asked_nothing_run(dpkg, run_module):
    result, _failed = run_module(host_info.main, {})
    assert result["missing_packages"] == [] and result["json_problems"] == {} and dpkg == []


def test_multiarch_names_count_as_installed():
    assert missing_packages(["libc6", "zlib1g"], "libc6:amd64 ii \nzlib1g:amd64 iU \n") == ["zlib1g"]


def test_an_engine_or_time_daemon_the_node_has_counts_and_nothing_is_installed_over_it():
    """Docker CE (docker-ce, containerd.io) and systemd-timesyncd, as most GPU servers have."""
    listing = "docker-ce ii \ncontainerd.io ii \nsystemd-timesyncd ii \nkmod ii \n"
    wanted = ["docker.io | docker-ce | moby-engine", "chrony | systemd-timesyncd | ntp | ntpsec", "kmod"]
    assert missing_packages(wanted, listing) == []
    assert provided_by(wanted, listing) == {"docker.io": "docker-ce", "chrony": "systemd-timesyncd", "kmod": "kmod"}
    assert missing_packages(wanted, "kmod ii \n") == ["docker.io", "chrony"]


def test_apts_simulation_names_what_an_install_would_remove():
    output = fixture_text("apt/simulate-install-chrony-over-systemd-timesyncd.txt")
    assert apt_removals(output) == ["systemd-timesyncd"]


def test_the_operators_daemon_json_keys_are_theirs_and_a_driver_keeps_its_options():
    ours = {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "3"}, "live-restore": True}
    # Their journald logging: our json-file options would stop dockerd from starting.
    theirs = {"log-driver": "journald", "log-opts": {"tag": "{{.Name}}"}}
    assert defaults_under(theirs, ours) == dict(theirs, **{"live-restore": True})
    # No driver named: the default json-file, whose options fill in what they did not set.
    assert defaults_under({"log-opts": {"max-size": "10m"}}, ours) == {
        "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": True}
    # Their own live-restore: false stays; a file that holds every key is not rewritten.
    text, merged = merged_json_text("/etc/docker/daemon.json", '{"live-restore": false}', {"live-restore": True}, keep_existing=True)
    assert (text, merged) == (None, {"live-restore": False})
