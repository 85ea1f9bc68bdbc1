#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Make a node's folders, configuration files and merged JSON files match, in one pass
version_added: 0.1.0
description:
  - Checks a whole set of folders and files on the node in one module run - one round trip
    instead of one task per file - and writes only what differs, atomically.
  - O(json_merges) merges keys into a JSON object file (C(/etc/docker/daemon.json)) and keeps
    every key already there that it does not name; a file that is not a JSON object is refused
    and left untouched. A file that already holds every key is not rewritten, whatever its
    formatting.
  - Reports which paths changed, so handlers restart only the services whose file changed.
author:
  - llmops.inference maintainers (@llmops)
options:
  directories:
    description:
      - Folders to create, with C(path) and optional C(mode) (default C(0755)), C(owner), C(group).
      - With C(keep_existing=true), a folder that already exists keeps its mode and owner (the
        folder of a file the operator placed in C(/etc) is theirs); only one this module creates
        gets them.
    type: list
    elements: dict
    default: []
  files:
    description:
      - Files with C(path) and C(content), optional C(mode) (default C(0644)), C(owner), C(group).
      - Give secret content only with C(no_log) on the task.
    type: list
    elements: dict
    default: []
  json_merges:
    description:
      - JSON object files with C(path) and C(options) (the keys to merge), optional C(mode), C(backup).
      - With C(keep_existing=true), every key the file sets keeps its value (the operator's), only
        keys it lacks are added, and a driver's options (C(log-opts), C(storage-opts)) are not
        added where the file names another driver.
    type: list
    elements: dict
    default: []
  secrets:
    description:
      - Files holding a random secret of C(length) letters and digits (default 48), created 0600
        when absent and never replaced, so clients keep working across reruns. Their values are
        returned in C(secrets), so set C(no_log) on the task.
      - With C(value), the file holds exactly that value instead (a key the operator gives, from a
        vault, or a previous key put back); a different value kept before is returned in
        C(previous), so a failed change can put it back.
      - With C(env_file) and C(env_name), the secret is also kept as C(env_name=<secret>) in that
        file (0600), the form a container's environment file takes.
    type: list
    elements: dict
    default: []
  backup:
    description: Keep a timestamped copy of a file before replacing it (files and merges).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reports the paths that would change, and writes nothing.
    support: full
  diff_mode:
    description: Before and after of every file it writes (never of a secret).
    support: full
"""

EXAMPLES = r"""
- name: Write the node's limits and merge Docker's daemon.json
  llmops.inference.config_files:
    directories:
      - path: /var/lib/llmops-inference
    files:
      - path: /etc/security/limits.d/90-llmops-inference.conf
        content: "* soft nofile 1048576\n"
    json_merges:
      - path: /etc/docker/daemon.json
        options: {live-restore: true}
    backup: true
  register: node_files
"""

RETURN = r"""
changed_paths:
  description: The folders and files created or changed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
backups:
  description: Backup file per replaced path.
  returned: always
  type: dict
secrets:
  description: Value per O(secrets) path (absent for one that check mode would create).
  returned: always
  type: dict
previous:
  description: The value each O(secrets) path held before this run replaced it with a given C(value).
  returned: always
  type: dict
"""

import os
import secrets
import string
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._files import FilesError, merged_json_text


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def set_attributes(module, path, item, default_mode):
    """Mode, owner, group; True when any differed (only reported in check mode)."""
    changed = module.set_mode_if_different(path, item.get("mode") or default_mode, False)
    changed = module.set_owner_if_different(path, item.get("owner") or "root", changed)
    return module.set_group_if_different(path, item.get("group") or "root", changed)


def write_atomically(module, path, content, item, backup, backups):
    if backup and os.path.exists(path):
        backups[path] = module.backup_local(path)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(content)
    # Mode before the move, so a secret is never readable under its final name.
    os.chmod(temporary, int(str(item.get("mode") or "0644"), 8))
    module.atomic_move(temporary, path)


def ensure_file(module, path, content, item, backup, state, diff=True):
    """Write content when it differs; record the path, the diff (not of a secret) and the
    backup in state."""
    existing = read_text(path)
    changed = existing != content
    if changed:
        if diff:
            state["diff"].append({"before_header": path, "after_header": path, "before": existing or "", "after": content})
        if not module.check_mode:
            if not os.path.isdir(os.path.dirname(path)):
                module.fail_json(msg="the folder of %s does not exist; list it in directories" % path,
                                 changed_paths=state["changed"])
            write_atomically(module, path, content, item, backup, state["backups"])
    if os.path.exists(path) and set_attributes(module, path, item, "0644"):
        changed = True
    if changed:
        state["changed"].append(path)


def ensure_secret(module, item, state):
    """The secret kept at item's path: item's value when given (the one kept before goes to
    state["previous"]), else the kept one, generated (letters and digits) when absent and never
    replaced; None in check mode when it would be generated."""
    path, kept = item["path"], read_text(item["path"])
    # A vault value often ends with the newline of `echo key | ansible-vault encrypt_string`.
    value = str(item.get("value") or "").strip()
    if value:
        if kept is not None and kept.strip() and kept.strip() != value:
            state["previous"][path] = kept.strip()
        ensure_file(module, path, value + "\n", dict(item, mode=item.get("mode") or "0600"), False, state, diff=False)
        return value
    if kept is not None and kept.strip():
        if set_attributes(module, path, item, "0600"):
            state["changed"].append(path)
        return kept.strip()
    state["changed"].append(path)
    if module.check_mode:
        return None
    alphabet = string.ascii_letters + string.digits
    generated = "".join(secrets.choice(alphabet) for _position in range(int(item.get("length") or 48)))
    write_atomically(module, path, generated + "\n", item, False, {})
    set_attributes(module, path, item, "0600")
    return generated


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[]),
            files=dict(type="list", elements="dict", default=[]),
            json_merges=dict(type="list", elements="dict", default=[]),
            # Not no_log here: Ansible would then mask every value given in it in this module's own
            # result, and the key returned in `secrets` would read ******** (every caller sets
            # no_log on its task, which keeps the values out of output and logs).
            secrets=dict(type="list", elements="dict", default=[], no_log=False),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    state = {"changed": [], "backups": {}, "diff": [], "previous": {}}

    # Every merge is decided before anything is written: a broken file stops the whole set.
    merges = []
    for item in params["json_merges"]:
        try:
            text, _merged = merged_json_text(item["path"], read_text(item["path"]), item.get("options") or {},
                                             keep_existing=bool(item.get("keep_existing")))
        except FilesError as error:
            module.fail_json(msg=str(error))
        merges.append((item, text))

    for item in params["directories"]:
        path = item["path"]
        changed = not os.path.isdir(path)
        if changed and not module.check_mode:
            os.makedirs(path, exist_ok=True)
        if item.get("keep_existing") and not changed:
            continue  # the operator's folder: its mode and owner are theirs
        if os.path.isdir(path) and set_attributes(module, path, item, "0755"):
            changed = True
        if changed:
            state["changed"].append(path)

    values = {}
    for item in params["secrets"]:
        value = ensure_secret(module, dict(item, mode=item.get("mode") or "0600"), state)
        if value is not None:
            values[item["path"]] = value
        if item.get("env_file"):
            env_item = {"mode": "0600", "owner": item.get("owner"), "group": item.get("group")}
            if value is not None:
                ensure_file(module, item["env_file"], "%s=%s\n" % (item["env_name"], value), env_item, False, state,
                            diff=False)
            else:  # check mode, the secret not made yet: its file would be written too
                state["changed"].append(item["env_file"])

    for item in params["files"]:
        ensure_file(module, item["path"], item["content"], item, params["backup"], state)
    for item, text in merges:
        if text is not None:
            ensure_file(module, item["path"], text, item, item.get("backup", params["backup"]), state)
        elif set_attributes(module, item["path"], item, "0644"):
            state["changed"].append(item["path"])

    result = dict(changed=bool(state["changed"]), changed_paths=state["changed"], backups=state["backups"], secrets=values,
                  previous=state["previous"])
    if module._diff:
        result["diff"] = state["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
