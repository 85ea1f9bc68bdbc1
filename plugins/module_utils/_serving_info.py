# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the serve phase reads from the node before it decides anything, read in one pass."""

from __future__ import annotations

import hashlib
import os
import re
import stat

ROUTE_DEVICE = re.compile(r"\bdev\s+(\S+)")


def model_folder(model_dir):
    """(config.json present, the folder to mount). The weights phase publishes model_dir as a
    symlink to a verified copy: mount that copy itself, so a new revision changes the spec."""
    source = os.path.realpath(model_dir) if os.path.islink(model_dir) else model_dir
    return os.path.isfile(os.path.join(model_dir, "config.json")), source


def route_interface(ip_route_output):
    """The interface of `ip -o route get <peer>`, or "" when it names none."""
    found = ROUTE_DEVICE.search(ip_route_output or "")
    return found.group(1) if found else ""


def secret_digest(path):
    """{sha256, mode, owner, folder_mode, folder_owner} of a secret file kept by config_files,
    never its content: the digest of the stripped text (a kept secret and a copy of it written
    without the newline digest alike); sha256 '' when the file is missing or empty; owners as
    "uid:gid", '' when missing."""
    def mode_and_owner(of):
        try:
            status = os.stat(of)
        except OSError:
            return "", ""
        return "%04o" % stat.S_IMODE(status.st_mode), "%d:%d" % (status.st_uid, status.st_gid)
    try:
        with open(path, "rb") as handle:
            text = handle.read().strip()
    except OSError:
        text = b""
    mode, owner = mode_and_owner(path)
    folder_mode, folder_owner = mode_and_owner(os.path.dirname(path) or ".")
    return {"sha256": hashlib.sha256(text).hexdigest() if text else "", "mode": mode, "owner": owner,
            "folder_mode": folder_mode, "folder_owner": folder_owner}
