# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The option of the modules that read the node's Docker engine through its Engine API."""

    DOCUMENTATION = r"""
options:
  docker_host:
    description: The node's Docker Engine API socket (a C(unix://) path).
    type: str
    default: unix:///var/run/docker.sock
"""
