# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a node's configuration files should hold: a whole set checked in one pass."""

from __future__ import annotations

import json


class FilesError(Exception):
    """A file the operator must fix by hand; nothing was written."""


def deep_merge(current, options):
    """options merged over current: mappings key by key, all else replaced (Jinja's
    combine(recursive=true), which the role used before)."""
    merged = dict(current)
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# A driver-specific option goes with its driver: options for json-file are wrong for journald.
COMPANIONS = {"log-opts": "log-driver", "storage-opts": "storage-driver"}


def defaults_under(current, options):
    """options added under current where current does not set them: every key current sets is
    the operator's and kept; mappings are filled key by key. An option that belongs to a
    driver (COMPANIONS) is not added when current names another driver."""
    merged = dict(current)
    for key, value in options.items():
        companion = COMPANIONS.get(key)
        if companion and companion in current and current[companion] != options.get(companion, current[companion]):
            continue
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = defaults_under(merged[key], value)
    return merged


def render_json(document):
    """The text written for a JSON file (sorted keys, two-space indent, final newline)."""
    return json.dumps(document, indent=2, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def merged_json_text(path, existing_text, options, keep_existing=False):
    """(new text or None when the file already holds every option, the document it would hold).
    The file's own keys are kept (keep_existing: their values too, see defaults_under); one that
    is not a JSON object is refused, untouched."""
    text = (existing_text or "").strip()
    try:
        current = json.loads(text) if text else {}
    except ValueError as error:
        raise FilesError("%s is not valid JSON (%s); it was left untouched. Fix or remove it, then rerun." % (path, error))
    if not isinstance(current, dict):
        raise FilesError("%s is not a JSON object; it was left untouched. Fix or remove it, then rerun." % path)
    merged = defaults_under(current, options) if keep_existing else deep_merge(current, options)
    if text and merged == current:
        return None, merged
    return render_json(merged), merged


def json_object_problem(path, text):
    """Why the file at path cannot be merged into (None when it can: absent, empty or an object)."""
    try:
        merged_json_text(path, text, {})
    except FilesError as error:
        return str(error)
    return None


def alternatives(wanted):
    """The package names each wanted entry accepts: "docker.io | docker-ce" gives
    ["docker.io", "docker-ce"] (apt's notation); the first is the one installed when none is."""
    return [[name.strip() for name in str(entry).split("|") if name.strip()] for entry in wanted]


def installed_packages(dpkg_query_output):
    """The packages `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n'` shows installed (ii)."""
    installed = set()
    for line in (dpkg_query_output or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].startswith("ii"):
            installed.add(fields[0].split(":")[0])
    return installed


def missing_packages(wanted, dpkg_query_output):
    """The wanted entries none of whose alternatives is installed, each as its first name (a
    name dpkg does not know at all is missing too): a node with Docker CE has the engine
    "docker.io | docker-ce" asks for, and nothing is installed over it."""
    installed = installed_packages(dpkg_query_output)
    return [names[0] for names in alternatives(wanted) if names and not installed.intersection(names)]


def provided_by(wanted, dpkg_query_output):
    """{first name: the installed package that provides it} for each wanted entry installed."""
    installed = installed_packages(dpkg_query_output)
    return {names[0]: next(name for name in names if name in installed)
            for names in alternatives(wanted) if names and installed.intersection(names)}


def apt_removals(simulation_output):
    """The packages an `apt-get -s install` would remove (its "Remv <name> [...]" lines)."""
    return [line.split()[1] for line in (simulation_output or "").splitlines() if line.startswith("Remv ")]
