# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: role_options
short_description: The argument_specs options of this collection's roles
version_added: 0.1.0
description:
  - Returns one mapping, role name to the C(options) of its C(main) entry point in
    C(roles/<role>/meta/argument_specs.yml), so the preflight phase can validate every role's
    variables with M(ansible.builtin.validate_argument_spec) before any role runs.
options:
  _terms:
    description: Role names in this collection; none means every role under C(roles/) that has argument_specs.
    required: false
    type: list
    elements: str
author:
  - llmops.inference maintainers (@llmops)
"""

EXAMPLES = r"""
- name: Every role's options, to check them all before any role runs
  ansible.builtin.set_fact:
    every_role_option: "{{ query('llmops.inference.role_options') | first }}"

- name: Check vllm_serve's variables before anything changes
  ansible.builtin.validate_argument_spec:
    argument_spec: "{{ (query('llmops.inference.role_options', 'vllm_serve') | first).vllm_serve }}"
"""

RETURN = r"""
_raw:
  description: One mapping of role name to its main entry point's options.
  type: list
  elements: dict
"""

import os

import yaml

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")


def every_role():
    """Every role of the collection that documents its variables, by name."""
    return sorted(name for name in os.listdir(ROLES_DIR)
                  if os.path.isfile(os.path.join(ROLES_DIR, name, "meta", "argument_specs.yml")))


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        options = {}
        for role in terms or every_role():
            path = os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")
            try:
                with open(path, encoding="utf-8") as handle:
                    options[role] = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
            except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
                raise AnsibleLookupError("cannot read the argument_specs of role %s at %s: %s" % (role, path, error))
        return [options]
