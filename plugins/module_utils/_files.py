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


def render_json(document):
    """The text written for a JSON file (sorted keys, two-space indent, final newline)."""
    return json.dumps(document, indent=2, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def merged_json_text(path, existing_text, options):
    """(new text or None when the file already holds every option, the document it would hold).
    The file's own keys are kept; one that is not a JSON object is refused, untouched."""
    text = (existing_text or "").strip()
    try:
        current = json.loads(text) if text else {}
    except ValueError as error:
        raise FilesError("%s is not valid JSON (%s); it was left untouched. Fix or remove it, then rerun." % (path, error))
    if not isinstance(current, dict):
        raise FilesError("%s is not a JSON object; it was left untouched. Fix or remove it, then rerun." % path)
    merged = deep_merge(current, options)
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


def missing_packages(wanted, dpkg_query_output):
    """The wanted packages `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n'` does not show
    installed (status ii); a name it does not know at all is missing too."""
    installed = set()
    for line in (dpkg_query_output or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].startswith("ii"):
            installed.add(fields[0].split(":")[0])
    return [name for name in wanted if name not in installed]
