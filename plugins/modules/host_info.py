#!/usr/bin/python
# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_info
short_description: Read in one pass what host preparation must know before it changes a node
version_added: 0.1.0
description:
  - Reports which of O(packages) are not installed (C(dpkg-query)), which installed package
    provides each entry (an entry may name alternatives, C(docker.io | docker-ce)), what
    installing the missing ones would remove (C(apt-get -s install), nothing changed), and, for each of
    O(json_objects), why that file could not be merged into (it exists but is not valid JSON, or
    not a JSON object).
  - The host_prep role runs it in preflight, so a node whose C(/etc/docker/daemon.json) cannot
    be merged stops the run before any node changes, and the install step then uses the list
    of missing packages without asking the node again.
author:
  - llmops.inference maintainers (@llmops)
options:
  packages:
    description:
      - Debian package names the node must have; an entry C(a | b) is satisfied by either, and
        C(a) is the one installed when neither is.
    type: list
    elements: str
    default: []
  json_objects:
    description: Paths that must hold a JSON object when they exist.
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - llmops.inference.read_only
"""

EXAMPLES = r"""
- name: Read the missing packages and check daemon.json
  llmops.inference.host_info:
    packages: [docker.io, chrony]
    json_objects: [/etc/docker/daemon.json]
  register: host
"""

RETURN = r"""
missing_packages:
  description: The packages of O(packages) not installed, in the order given.
  returned: always
  type: list
  elements: str
provided:
  description: For each entry of O(packages) installed, its first name and the package that provides it.
  returned: always
  type: dict
  sample: {docker.io: docker-ce, chrony: chrony}
would_remove:
  description:
    - The installed packages that installing RV(missing_packages) would remove (apt's simulation);
      empty when nothing is missing or apt cannot tell yet (no package lists).
  returned: always
  type: list
  elements: str
json_problems:
  description: Path to the reason it cannot be merged into, for each file of O(json_objects) that cannot.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.inference.plugins.module_utils._files import (
    alternatives,
    apt_removals,
    json_object_problem,
    missing_packages,
    provided_by,
)


def json_problem(path):
    """Why the file at path cannot be merged into, or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        return "%s cannot be read (%s); it was left untouched." % (path, error)
    return json_object_problem(path, text)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            json_objects=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, missing_packages=[], provided={}, would_remove=[], json_problems={})
    if params["packages"]:
        dpkg_query = module.get_bin_path("dpkg-query", required=True)
        names = [name for names in alternatives(params["packages"]) for name in names]
        # rc 1 only says some names are unknown: they are missing, the others are listed.
        rc, out, err = module.run_command([dpkg_query, "-W", "-f", "${Package} ${db:Status-Abbrev}\\n"] + names,
                                          environ_update={"LC_ALL": "C"})
        if rc not in (0, 1):
            module.fail_json(msg="dpkg-query failed: %s" % err.strip(), rc=rc, stdout=out, stderr=err, **result)
        result["missing_packages"] = missing_packages(params["packages"], out)
        result["provided"] = provided_by(params["packages"], out)
        apt_get = module.get_bin_path("apt-get")
        if result["missing_packages"] and apt_get:
            # A simulation changes nothing; without package lists it cannot tell (install refreshes them).
            _rc, simulated, _err = module.run_command([apt_get, "-s", "-o", "Debug::NoLocking=1", "install"]
                                                      + result["missing_packages"], environ_update={"LC_ALL": "C"})
            result["would_remove"] = apt_removals(simulated)
    for path in params["json_objects"]:
        problem = json_problem(path)
        if problem:
            result["json_problems"][path] = problem
    module.exit_json(**result)


if __name__ == "__main__":
    main()
