"""config_files on real files in a temporary folder: one pass writes only what differs."""

from __future__ import annotations

import grp
import json
import os
import pwd

import pytest

from ansible_collections.llmops.inference.plugins.module_utils._files import FilesError, deep_merge, merged_json_text
from ansible_collections.llmops.inference.plugins.modules import config_files

OWNER = {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def mode_of(path):
    return oct(os.stat(path).st_mode & 0o777)


@pytest.fixture
def node(tmp_path):
    """The paths of one node's configuration, as the host_prep role passes them."""
    limits, daemon = tmp_path / "limits" / "90.conf", tmp_path / "docker" / "daemon.json"
    args = {
        "directories": [dict(OWNER, path=str(tmp_path / "limits")), dict(OWNER, path=str(tmp_path / "docker"), mode="0700")],
        "files": [dict(OWNER, path=str(limits), content="* soft nofile 1048576\n")],
        "json_merges": [dict(OWNER, path=str(daemon), options={"log-opts": {"max-size": "100m"}, "live-restore": True})],
        "backup": True,
    }
    return args, limits, daemon


def test_a_first_run_writes_everything_and_a_second_changes_nothing(node, run_module):
    args, limits, daemon = node
    result, failed = run_module(config_files.main, args)
    assert not failed and result["changed"]
    assert sorted(result["changed_paths"]) == sorted([str(limits.parent), str(daemon.parent), str(limits), str(daemon)])
    assert limits.read_text() == "* soft nofile 1048576\n" and mode_of(limits) == "0o644"
    assert mode_of(daemon.parent) == "0o700"
    assert json.loads(daemon.read_text()) == {"log-opts": {"max-size": "100m"}, "live-restore": True}
    again, _failed = run_module(config_files.main, args)
    assert not again["changed"] and again["changed_paths"] == []


def test_the_operators_daemon_json_keys_survive_and_a_backup_is_kept(node, run_module):
    args, _limits, daemon = node
    daemon.parent.mkdir()
    original = '{"registry-mirrors": ["https://mirror.example"], "log-opts": {"max-size": "10m", "labels": "team"}}'
    daemon.write_text(original)
    result, failed = run_module(config_files.main, args)
    assert not failed and str(daemon) in result["changed_paths"]
    merged = json.loads(daemon.read_text())
    assert merged["registry-mirrors"] == ["https://mirror.example"]
    assert merged["log-opts"] == {"max-size": "100m", "labels": "team"} and merged["live-restore"] is True
    assert open(result["backups"][str(daemon)]).read() == original


def test_a_daemon_json_that_already_holds_the_keys_is_not_rewritten_whatever_its_format(node, run_module):
    args, _limits, daemon = node
    daemon.parent.mkdir(mode=0o700)
    text = '{ "live-restore" : true, "log-opts": {"max-size": "100m"}, "data-root": "/data/docker" }'
    daemon.write_text(text)
    os.chmod(daemon, 0o644)
    args["files"] = []
    args["directories"] = args["directories"][1:]
    result, failed = run_module(config_files.main, args)
    assert not failed and not result["changed"] and daemon.read_text() == text


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "is not a JSON object; it was left untouched"),
    ("{not json", "is not valid JSON"),
])
def test_a_daemon_json_it_cannot_merge_into_stops_before_any_file_is_written(node, run_module, content, message):
    args, limits, daemon = node
    daemon.parent.mkdir()
    daemon.write_text(content)
    result, failed = run_module(config_files.main, args)
    assert failed and message in result["msg"] and str(daemon) in result["msg"]
    assert daemon.read_text() == content and not limits.exists()


def test_check_mode_reports_what_would_change_and_writes_nothing(node, run_module, tmp_path):
    args, limits, _daemon = node
    result, failed = run_module(config_files.main, dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert not failed and result["changed"] and len(result["changed_paths"]) == 4
    assert not limits.parent.exists()
    assert {entry["before_header"] for entry in result["diff"]} == {str(limits), str(node[2])}


def test_a_changed_mode_alone_is_a_change(node, run_module):
    args, limits, _daemon = node
    run_module(config_files.main, args)
    os.chmod(limits, 0o666)
    result, _failed = run_module(config_files.main, args)
    assert result["changed_paths"] == [str(limits)] and mode_of(limits) == "0o644"


def test_a_secret_is_generated_once_0600_and_then_only_read(tmp_path, run_module):
    key = tmp_path / "secrets" / "key"
    args = {"directories": [dict(OWNER, path=str(key.parent), mode="0700")],
            "secrets": [dict(OWNER, path=str(key), length=48)]}
    first, failed = run_module(config_files.main, args)
    value = first["secrets"][str(key)]
    assert not failed and len(value) == 48 and value.isalnum() and key.read_text() == value + "\n"
    assert mode_of(key) == "0o600"
    again, _failed = run_module(config_files.main, args)
    assert not again["changed"] and again["secrets"][str(key)] == value


def test_check_mode_creates_no_secret(tmp_path, run_module):
    key = tmp_path / "key"
    result, _failed = run_module(config_files.main, {"secrets": [dict(OWNER, path=str(key))], "_ansible_check_mode": True})
    assert result["changed"] and result["secrets"] == {} and not key.exists()


def test_deep_merge_replaces_lists_and_merges_mappings():
    current = {"a": {"b": 1, "c": [1]}, "keep": True}
    assert deep_merge(current, {"a": {"c": [2], "d": 3}}) == {"a": {"b": 1, "c": [2], "d": 3}, "keep": True}
    assert current == {"a": {"b": 1, "c": [1]}, "keep": True}


def test_an_empty_or_missing_json_file_gets_the_options():
    text, merged = merged_json_text("/x", "", {"live-restore": True})
    assert merged == {"live-restore": True} and text == '{\n  "live-restore": true\n}\n'
    with pytest.raises(FilesError):
        merged_json_text("/x", '"a string"', {})


def test_a_generated_secret_is_also_kept_as_an_environment_file(tmp_path, run_module):
    key, env = tmp_path / "key", tmp_path / "serve.env"
    args = {"secrets": [dict(OWNER, path=str(key), env_file=str(env), env_name="VLLM_API_KEY")]}
    first, _failed = run_module(config_files.main, args)
    assert env.read_text() == "VLLM_API_KEY=%s\n" % first["secrets"][str(key)] and mode_of(env) == "0o600"
    assert sorted(first["changed_paths"]) == sorted([str(key), str(env)])
    again, _failed = run_module(config_files.main, args)
    assert not again["changed"]


def test_a_given_key_replaces_the_kept_one_and_returns_it_so_a_failed_change_can_put_it_back(tmp_path, run_module):
    key, env = tmp_path / "key", tmp_path / "serve.env"
    generate = {"secrets": [dict(OWNER, path=str(key), env_file=str(env), env_name="VLLM_API_KEY")]}
    generated, _failed = run_module(config_files.main, generate)
    old = generated["secrets"][str(key)]
    given = {"secrets": [dict(OWNER, path=str(key), value="a-rotated-key", env_file=str(env), env_name="VLLM_API_KEY")]}
    rotated, _failed = run_module(config_files.main, dict(given, _ansible_diff=True))
    # Both files hold the key as given (no escape sequence added), 0600, and no diff shows it.
    assert key.read_text() == "a-rotated-key\n" and env.read_text() == "VLLM_API_KEY=a-rotated-key\n"
    assert mode_of(key) == mode_of(env) == "0o600"
    assert rotated["previous"] == {str(key): old} and rotated["secrets"] == {str(key): "a-rotated-key"}
    assert sorted(rotated["changed_paths"]) == sorted([str(key), str(env)]) and rotated["diff"] == []
    again, _failed = run_module(config_files.main, given)
    assert not again["changed"] and again["previous"] == {}
    back, _failed = run_module(config_files.main, {"secrets": [dict(given["secrets"][0], value=old)]})
    assert back["changed"] and env.read_text() == "VLLM_API_KEY=%s\n" % old
    # A vault value with the newline echo gave it is the same key.
    same, _failed = run_module(config_files.main, {"secrets": [dict(given["secrets"][0], value=old + "\n")]})
    assert not same["changed"] and same["previous"] == {} and same["secrets"] == {str(key): old}


def test_an_operators_folder_keeps_its_mode_and_owner(tmp_path, run_module):
    theirs, ours = tmp_path / "etc", tmp_path / "etc" / "llmops"
    theirs.mkdir(mode=0o755)
    args = {"directories": [dict(OWNER, path=str(theirs), mode="0700", keep_existing=True),
                            dict(OWNER, path=str(ours), mode="0700", keep_existing=True)]}
    result, _failed = run_module(config_files.main, args)
    assert mode_of(theirs) == "0o755" and mode_of(ours) == "0o700"
    assert result["changed_paths"] == [str(ours)]


def test_the_secrets_it_returns_are_not_masked_in_its_own_result():
    """A no_log option would make Ansible replace its values - the key given, even the paths -
    with ******** in the module's result (exit_json does, after the run_module fixture stops),
    and the key the role reads back would be that: the callers' tasks are no_log instead."""
    from ansible.module_utils.common.parameters import _list_no_log_values

    spec = {"secrets": {"type": "list", "elements": "dict", "default": [], "no_log": False}}
    source = open(config_files.__file__, encoding="utf-8").read()
    assert 'secrets=dict(type="list", elements="dict", default=[], no_log=False)' in source
    assert _list_no_log_values(spec, {"secrets": [{"path": "/k", "value": "a-key"}]}) == set()
