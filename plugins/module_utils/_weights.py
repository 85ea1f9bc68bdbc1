# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on a node: listing, completion marker, staging and atomic publish.

Standard library only: the role also ships this file to the nodes beside weights_mirror.py and
weights_fetch.py, which import it, so the marker, the partial-file suffix and the hashing are
written once.

Layout for a serving path W (what vLLM mounts):
  W                      symlink to W.revisions/<revision>.<n>, swapped atomically on publish
  W.revisions/<rev>.<n>/ a published, verified copy; holds MARKER (source, model, revision,
                         and per file: size, sha256 (or git_sha1), mtime_ns)
  W.revisions/<rev>.staging/  where fetches land; kept across failed runs so they resume
Unchanged files move between revisions as hard links, so they are never fetched or hashed twice.

A file's content is known by its SHA-256. The one exception: Hugging Face lists small files
(stored in git, not LFS) with only their git blob id, so those carry git_sha1 instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

MARKER = ".llmops-weights.json"
MARKER_FORMAT = 1
PARTIAL_SUFFIX = ".incomplete"  # where the ModelScope client keeps a file it is still fetching
STAGING_SUFFIX = ".staging"


class WeightsError(Exception):
    """Something about the listing or the files on disk that the operator must see."""


def checked_relative_path(path):
    """A listing path as a safe relative path, or WeightsError (a hub must not write outside)."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        raise WeightsError("unsafe file path in the listing: %r" % (path,))
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[-1] == MARKER:
        raise WeightsError("unsafe file path in the listing: %r" % (path,))
    return path


def parse_modelscope_listing(document):
    """Files of a ModelScope listing answer as sorted [{path, size, sha256}]."""
    if not isinstance(document, dict) or document.get("Success") is False or "Data" not in document:
        message = document.get("Message") if isinstance(document, dict) else None
        raise WeightsError(message or "unexpected listing answer: %.200r" % (document,))
    data = document["Data"]
    entries = data.get("Files") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise WeightsError("unexpected listing answer: %.200r" % (document,))
    files = []
    for entry in entries:
        if entry.get("Type") == "tree":
            continue
        path = checked_relative_path(entry.get("Path") or entry.get("Name"))
        size, sha256 = entry.get("Size"), (entry.get("Sha256") or "").lower()
        if not isinstance(size, int) or size < 0:
            raise WeightsError("the listing gives no size for %s" % path)
        if len(sha256) != 64:
            raise WeightsError("the listing gives no SHA-256 for %s: files cannot be verified" % path)
        files.append({"path": path, "size": size, "sha256": sha256})
    if not files:
        raise WeightsError("the listing has no files")
    return sorted(files, key=lambda item: item["path"])


def parse_huggingface_listing(document):
    """Files of a Hugging Face model-info answer (/api/models/<id>/revision/<rev>?blobs=true) as
    sorted [{path, size, sha256}] for LFS files and [{path, size, git_sha1}] for the others."""
    siblings = document.get("siblings") if isinstance(document, dict) else None
    if not isinstance(siblings, list):
        message = document.get("error") if isinstance(document, dict) else None
        raise WeightsError(message or "unexpected listing answer: %.200r" % (document,))
    files = []
    for entry in siblings:
        path = checked_relative_path(entry.get("rfilename"))
        lfs = entry.get("lfs") or {}
        size = lfs.get("size", entry.get("size"))
        if not isinstance(size, int) or size < 0:
            raise WeightsError("the listing gives no size for %s" % path)
        sha256, git_sha1 = (lfs.get("sha256") or "").lower(), (entry.get("blobId") or "").lower()
        if len(sha256) == 64:
            files.append({"path": path, "size": size, "sha256": sha256})
        elif len(git_sha1) == 40:
            files.append({"path": path, "size": size, "git_sha1": git_sha1})
        else:
            raise WeightsError("the listing gives no hash for %s: files cannot be verified" % path)
    if not files:
        raise WeightsError("the listing has no files")
    return sorted(files, key=lambda item: item["path"])


def content_key(item):
    """What identifies a listed file's content: its SHA-256, else its git blob id."""
    return item["sha256"] if item.get("sha256") else "git-sha1:" + item["git_sha1"]


def content_key_of(path, item):
    """content_key of the file at path, hashed the way item is known (reads the whole file)."""
    if item.get("sha256"):
        return sha256_of(path)
    header = b"blob %d\0" % os.path.getsize(path)  # git's object header
    return "git-sha1:" + _hexdigest(path, hashlib.sha1(header))


def sha256_of(path):
    return _hexdigest(path, hashlib.sha256())


def file_hashes(path):
    """(sha256, git blob sha1) of a file, read once: how a hub knows LFS and git files."""
    sha256, git_sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            sha256.update(block)
            git_sha1.update(block)
    return sha256.hexdigest(), git_sha1.hexdigest()


def _hexdigest(path, digest):
    """digest fed with the file's bytes, as hex."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listing_of_directory(directory, git_sha1=False):
    """Listing of a local folder (the controller source), hashing each file; with git_sha1, each
    file's git blob id as well (a test hub lists small files by it, as Hugging Face does)."""
    files = []
    for folder, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            if name == MARKER or not os.path.isfile(full):
                continue
            item = {"path": checked_relative_path(os.path.relpath(full, directory)), "size": os.path.getsize(full)}
            if git_sha1:
                item["sha256"], item["git_sha1"] = file_hashes(full)
            else:
                item["sha256"] = sha256_of(full)
            files.append(item)
    if not files:
        raise WeightsError("no files under %s" % directory)
    return sorted(files, key=lambda item: item["path"])


def revisions_root(weights_dir):
    return weights_dir.rstrip("/") + ".revisions"


def staging_dir(weights_dir, revision):
    return os.path.join(revisions_root(weights_dir), revision.replace("/", "_") + STAGING_SUFFIX)


def read_marker(directory):
    try:
        with open(os.path.join(directory, MARKER)) as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None


def published_dir(weights_dir):
    """The published folder weights_dir points to, None when absent, or 'foreign' when the path
    exists but was not placed by this role (a real folder, or a link elsewhere)."""
    if not os.path.lexists(weights_dir):
        return None
    if not os.path.islink(weights_dir):
        return "foreign"
    target = os.path.realpath(weights_dir)
    root = os.path.realpath(revisions_root(weights_dir))
    if os.path.dirname(target) != root or not os.path.isdir(target):
        return "foreign"
    return target


def unchanged_since_marker(directory, item):
    """True when the file still has the size and mtime recorded at publish (no read needed)."""
    try:
        status = os.stat(os.path.join(directory, item["path"]))
    except OSError:
        return False
    return status.st_size == item["size"] and status.st_mtime_ns == item["mtime_ns"]


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem that holds path (or would)."""
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe) or "/"
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def check(weights_dir, wanted, files=None, full_verify=False):
    """State of the weights at weights_dir against wanted {source, model, revision}.

    complete: published, same source/model/revision, every file unchanged since publish (and,
    with full_verify, re-hashed); with files (the hub's listing) the hashes must match it too.
    bytes_needed: what a fetch of files would still write on this node.
    """
    published = published_dir(weights_dir)
    result = {"published_dir": published if published != "foreign" else None, "foreign": published == "foreign",
              "changed_files": [], "hashed_bytes": 0}
    marker = read_marker(published) if published and published != "foreign" else None
    same_model = marker is not None and all(marker.get(key) == wanted[key] for key in ("source", "model", "revision"))
    result["published_revision"] = marker.get("revision") if marker else None
    if same_model:
        for item in marker["files"]:
            good = unchanged_since_marker(published, item)
            if good and full_verify:
                result["hashed_bytes"] += item["size"]
                good = content_key_of(os.path.join(published, item["path"]), item) == content_key(item)
            if not good:
                result["changed_files"].append(item["path"])
        if files is not None:
            recorded = {item["path"]: content_key(item) for item in marker["files"]}
            wanted_files = {item["path"]: content_key(item) for item in files}
            result["changed_files"] = sorted(
                set(result["changed_files"]) | {path for path in set(recorded) | set(wanted_files)
                                                if recorded.get(path) != wanted_files.get(path)})
    result["complete"] = same_model and not result["changed_files"]
    result["free_bytes"] = free_bytes(revisions_root(weights_dir))
    if files is not None:
        plan = plan_fetch(weights_dir, wanted["revision"], files)
        result["bytes_needed"] = plan["bytes_needed"]
        result["total_bytes"] = plan["total_bytes"]
    return result


def reusable_files(weights_dir):
    """content_key -> path of verified files in published folders (unchanged since their marker)."""
    root = revisions_root(weights_dir)
    reusable = {}
    if not os.path.isdir(root):
        return reusable
    for name in sorted(os.listdir(root)):
        directory = os.path.join(root, name)
        if name.endswith(STAGING_SUFFIX) or not os.path.isdir(directory):
            continue
        marker = read_marker(directory)
        for item in (marker or {}).get("files", []):
            if unchanged_since_marker(directory, item):
                reusable.setdefault(content_key(item), os.path.join(directory, item["path"]))
    return reusable


def _size_or_none(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def plan_fetch(weights_dir, revision, files):
    """What staging still lacks, without changing anything."""
    staging = staging_dir(weights_dir, revision)
    reusable = reusable_files(weights_dir)
    to_fetch, needed, staged = [], 0, 0
    for item in files:
        target = os.path.join(staging, item["path"])
        if _size_or_none(target) == item["size"]:
            staged += item["size"]
            continue
        if content_key(item) in reusable:
            continue
        partial = _size_or_none(target + PARTIAL_SUFFIX) or 0
        partial = partial if partial <= item["size"] else 0
        staged += partial
        needed += item["size"] - partial
        to_fetch.append(item["path"])
    return {"to_fetch": to_fetch, "bytes_needed": needed, "staged_bytes": staged,
            "total_bytes": sum(item["size"] for item in files), "reusable": reusable}


def stage(weights_dir, revision, files):
    """Prepare staging: keep finished files, hard-link verified unchanged ones from published
    folders, drop what the listing no longer has. Returns the plan and whether anything moved."""
    staging = staging_dir(weights_dir, revision)
    changed = not os.path.isdir(staging)
    os.makedirs(staging, exist_ok=True)
    listed = {item["path"]: item for item in files}
    changed |= _remove_unlisted(staging, listed, keep_partial=True)
    plan = plan_fetch(weights_dir, revision, files)
    for item in files:
        target = os.path.join(staging, item["path"])
        size = _size_or_none(target)
        if size == item["size"]:
            continue
        if size is not None:
            os.unlink(target)  # a finished file of the wrong size is not worth keeping
            changed = True
        source = plan["reusable"].get(content_key(item))
        if source:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(source, target)
            changed = True
    plan.pop("reusable")
    plan["staged_bytes"] = plan["total_bytes"] - plan["bytes_needed"]  # links and partial data included
    plan["staging_dir"] = staging
    plan["changed"] = changed
    return plan


def _remove_unlisted(staging, listed, keep_partial):
    removed = False
    for folder, _dirs, names in os.walk(staging, topdown=False):
        for name in names:
            full = os.path.join(folder, name)
            path = os.path.relpath(full, staging)
            partial_of_listed = keep_partial and path.endswith(PARTIAL_SUFFIX) and path[:-len(PARTIAL_SUFFIX)] in listed
            if path not in listed and not partial_of_listed:
                os.unlink(full)
                removed = True
        if folder != staging and not os.listdir(folder):
            os.rmdir(folder)
    return removed


def publish(weights_dir, wanted, files):
    """Verify staging against the listing, write the marker, and swap weights_dir to it.

    Files hard-linked from a verified published copy are not re-read; every other file is
    hashed. A file that fails is removed from staging (the next run fetches it again) and the
    publish stops with WeightsError naming it. Keeps the previously published folder, since a
    running server may still have it mounted; older ones are removed.
    """
    staging = staging_dir(weights_dir, wanted["revision"])
    previous = published_dir(weights_dir)
    if previous == "foreign":
        raise WeightsError("%s exists and was not placed by this role; it is left as it is" % weights_dir)
    verified_inodes = {}
    for key, source in reusable_files(weights_dir).items():
        status = os.stat(source)
        verified_inodes[(status.st_dev, status.st_ino)] = key
    _remove_unlisted(staging, {item["path"]: item for item in files}, keep_partial=False)
    problems, recorded, hashed = [], [], 0
    for item in files:
        target = os.path.join(staging, item["path"])
        try:
            status = os.stat(target)
        except OSError:
            problems.append("%s is missing" % item["path"])
            continue
        if status.st_size != item["size"]:
            problems.append("%s has %d bytes, the listing says %d" % (item["path"], status.st_size, item["size"]))
            os.unlink(target)
            continue
        if verified_inodes.get((status.st_dev, status.st_ino)) != content_key(item):
            hashed += item["size"]
            actual = content_key_of(target, item)
            if actual != content_key(item):
                kind, actual = ("SHA-256", actual) if item.get("sha256") else ("git blob id", actual.split(":")[1])
                problems.append("%s has %s %s, the listing says %s"
                                % (item["path"], kind, actual, item.get("sha256") or item.get("git_sha1")))
                os.unlink(target)
                continue
            _fsync(target)  # on disk before the marker vouches for it (fetchers do not sync)
        recorded.append(dict(item, mtime_ns=status.st_mtime_ns))
    if problems:
        raise WeightsError("; ".join(problems))
    marker = dict(wanted, format=MARKER_FORMAT, published_at=int(time.time()), files=recorded)
    _write_json(os.path.join(staging, MARKER), marker)
    root = revisions_root(weights_dir)
    final = os.path.join(root, "%s.%d" % (wanted["revision"].replace("/", "_"), time.time_ns()))
    os.rename(staging, final)
    link = weights_dir.rstrip("/") + ".llmops-new-link"
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(os.path.basename(root), os.path.basename(final)), link)
    os.replace(link, weights_dir)  # the one atomic step readers can observe
    _fsync(os.path.dirname(weights_dir.rstrip("/")))
    keep = {final, previous}
    for name in os.listdir(root):
        directory = os.path.join(root, name)
        if directory not in keep and not name.endswith(STAGING_SUFFIX) and os.path.isdir(directory):
            shutil.rmtree(directory)
    return {"published_dir": final, "hashed_bytes": hashed, "files": len(recorded)}


def _write_json(path, document):
    with open(path + ".tmp", "w") as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".tmp", path)


def _fsync(path):
    """Flush a file's or a folder's data to disk (O_RDONLY is enough for fsync on Linux)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def human_bytes(count):
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % count
