#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: operator_package
short_description: Place a package the operator supplies (a driver, an installer) on the node
version_added: 0.1.0
description:
  - An action plugin. Makes the package's folder (mode 0700), then copies the package from the
    control node, or fetches it from the operator's mirror when O(src) is a URL (with the
    checksum checked when one is given). The collection never downloads a vendor's package
    itself.
  - Used by the vastai_driver role (the VastAI driver package) and the erdma role (Alibaba's
    eRDMA installer).
author:
  - llmops.inference maintainers (@llmops)
options:
  src:
    description: An absolute path on the control node, or an https or file URL of the operator's mirror.
    type: str
    required: true
  dest:
    description: Where the package goes on the node.
    type: str
    required: true
  checksum:
    description: C(<algorithm>:<hex digest>) a fetched package must match; empty checks none.
    type: str
    default: ""
  mode:
    description: The package's mode on the node (0700 for an installer that is run).
    type: str
    default: "0600"
attributes:
  check_mode:
    description: Reports whether a new package would be placed; RV(pending) says nothing can look into it yet.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
"""

EXAMPLES = r"""
- name: Place the driver package on the node
  llmops.inference.operator_package:
    src: /srv/packages/vastai-pci-dkms_3.3.0_amd64.deb
    dest: /var/lib/llmops-inference/packages/vastai-pci-dkms_3.3.0_amd64.deb
    mode: "0700"
  register: driver_package
"""

RETURN = r"""
placed:
  description: Whether a new package was placed (or would be, in check mode).
  returned: always
  type: bool
pending:
  description: Check mode only, true when a new package would be placed, so nothing can look into it yet.
  returned: always
  type: bool
"""
