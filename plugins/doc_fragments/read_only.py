# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules that only read and report."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Reads only, so check mode reports exactly what a real run would.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
"""
