# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the serve phase reads from the node before it decides anything, read in one pass."""

from __future__ import annotations

import os
import re

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
