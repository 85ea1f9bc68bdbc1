"""host_info with dpkg-query answered from a queue (output captured on Debian 12) and real files."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._files import missing_packages
from ansible_collections.llmops.inference.plugins.modules import host_info

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
    assert dpkg == [["/usr/bin/dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n",
                     "docker.io", "chrony", "kmod", "nosuchpkg"]]
    assert sorted(result["json_problems"]) == sorted([str(bad), str(broken)])
    assert "is not a JSON object; it was left untouched" in result["json_problems"][str(bad)]
    assert "is not valid JSON" in result["json_problems"][str(broken)]


def test_nothing_asked_nothing_run(dpkg, run_module):
    result, _failed = run_module(host_info.main, {})
    assert result["missing_packages"] == [] and result["json_problems"] == {} and dpkg == []


def test_multiarch_names_count_as_installed():
    assert missing_packages(["libc6", "zlib1g"], "libc6:amd64 ii \nzlib1g:amd64 iU \n") == ["zlib1g"]
