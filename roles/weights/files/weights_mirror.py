"""Serve model folders over the ModelScope and Hugging Face file APIs.

Two uses, one implementation:
- the weights role starts it on the fetch node to fan a verified model out to the other
  nodes over the private network (they fetch from it with weights_fetch.py);
- the tests and the sandbox run it as the local hub (no model hub is reachable from them).

ModelScope API, as the client (modelscope 1.40.2 / modelscope-hub 0.5.1, and the 1.37
revisions call) requests it: the recursive file listing with Size and Sha256, whole-file and
ranged (206 / 416) downloads, the revisions map, and 404 for the intra-cloud probe, an unknown
model or an unknown revision.

Hugging Face API, as huggingface_hub 2.4.0 (hf download) and weights_fetch.py request it: model
info with file metadata (/api/models/<id>/revision/<rev>?blobs=true), the recursive tree
listing (/api/models/<id>/tree/<rev>), and HEAD / GET (ranged) on /<id>/resolve/<rev>/<path>
with the ETag and X-Repo-Commit headers; X-Error-Code on a 404. A revision may be named by its
name or by the commit id the info call returns. Like
the real hub, weight files (and anything over 10 MiB) are listed as LFS files with their SHA-256,
and small files only by their git blob id.

A folder published by the role carries its marker (.llmops-weights.json), whose verified hashes
are served as they are; any other folder is hashed once at start. --log writes one JSON line
per file body sent (api, path, revision, range start, bytes), so tests and operators can count
what was served; --rate limits each download. --idle-exit ends the mirror once no request has
been open for that many seconds (five times that before the first request): a fan-out whose
run was interrupted does not leave the model served on the node's address.

Usage: python3 weights_mirror.py --port P [--host ADDR] [--log FILE] [--rate BYTES_PER_S]
           [--idle-exit SECONDS [--first-request-within SECONDS]]
           --repo OWNER/NAME REVISION DIR [--repo ...]
Standard library only: it runs with the node's own python3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

CHUNK = 64 * 1024
SENDFILE_STEP = 16 << 20  # bytes per sendfile call: how precisely an interrupted body is logged
MARKER = ".llmops-weights.json"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".onnx", ".msgpack", ".model")
LFS_MIN_SIZE = 10 << 20


def file_hashes(path):
    """(sha256, git blob sha1) of a file, read once."""
    sha256, git_sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            git_sha1.update(block)
    return sha256.hexdigest(), git_sha1.hexdigest()


def scan(directory):
    """[{path, size, sha256?, git_sha1?}] for every file under directory (from its marker when it has one)."""
    if not os.path.isdir(directory):
        raise SystemExit("no model folder at %s" % directory)
    marker_path = os.path.join(directory, MARKER)
    if os.path.exists(marker_path):
        with open(marker_path) as handle:
            return json.load(handle)["files"]
    files = []
    for folder, _dirs, names in os.walk(directory):
        for name in names:
            full = os.path.join(folder, name)
            sha256, git_sha1 = file_hashes(full)
            files.append({"path": os.path.relpath(full, directory), "size": os.path.getsize(full),
                          "sha256": sha256, "git_sha1": git_sha1})
    if not files:
        raise SystemExit("no files under %s" % directory)
    return sorted(files, key=lambda item: item["path"])


def modelscope_entry(item):
    return {"Path": item["path"], "Name": os.path.basename(item["path"]), "Type": "blob", "Size": item["size"],
            "Sha256": item.get("sha256")}


def is_lfs(item):
    return bool(item.get("sha256")) and (item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_MIN_SIZE
                                         or not item.get("git_sha1"))


def huggingface_entry(item):
    entry = {"rfilename": item["path"], "size": item["size"], "blobId": item.get("git_sha1") or ""}
    if is_lfs(item):
        entry["lfs"] = {"sha256": item["sha256"], "size": item["size"], "pointerSize": 134}
    return entry


def etag_of(item):
    return item["sha256"] if is_lfs(item) else item["git_sha1"]


class Activity:
    """Open requests and the time the last one ended, for --idle-exit."""

    def __init__(self):
        self.lock = threading.Lock()
        self.open = 0
        self.served = False
        self.last = time.monotonic()

    def __enter__(self):
        with self.lock:
            self.open += 1
            self.served = True

    def __exit__(self, *_exc):
        with self.lock:
            self.open -= 1
            self.last = time.monotonic()

    def idle_for(self):
        """(seconds with no request open, whether any request came yet)."""
        with self.lock:
            return (0.0 if self.open else time.monotonic() - self.last), self.served


def exit_when_idle(server, activity, seconds, before_first):
    """Shut the server down once no request has been open for `seconds` (`before_first` until
    the first request comes: the nodes that fetch may take a while to start)."""
    while True:
        idle, served = activity.idle_for()
        if idle >= (seconds if served else before_first):
            break
        time.sleep(min(1.0, seconds / 4))
    server.shutdown()


def build_handler(repos, log_path, rate, activity):
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):
            pass

        def send_json(self, status, document, headers=()):
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802 - http.server's naming
            self.do_GET()

        def do_GET(self):  # noqa: N802 - http.server's naming
            # Counted while answering, not while a kept-alive connection sits idle.
            with activity:
                self.route()

        def route(self):
            url = urlparse(self.path)
            parts = [unquote(part) for part in url.path.strip("/").split("/")]
            if parts[:3] == ["api", "v1", "models"] and len(parts) >= 6:
                return self.modelscope(parts, parse_qs(url.query))
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "revision":
                return self.huggingface_info("/".join(parts[2:4]), parts[5])
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
                return self.huggingface_tree("/".join(parts[2:4]), parts[5], "/".join(parts[6:]))
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.huggingface_resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
            return self.send_json(404, {"error": "no such route: %s" % url.path})

        # ModelScope API
        def modelscope_not_found(self, message):
            self.send_json(404, {"Code": 10010205001, "Message": message, "Success": False})

        def modelscope(self, parts, query):
            model_id = "/".join(parts[3:5])
            if model_id not in repos:
                return self.modelscope_not_found("model %s not found" % model_id)
            if parts[5:] == ["revisions"]:
                branches = [{"Revision": name, "CreatedAt": 1700000000} for name in sorted(repos[model_id])]
                revision_map = {"RevisionMap": {"Branches": branches, "Tags": []}}
                return self.send_json(200, {"Code": 200, "Success": True, "Data": revision_map})
            revision = query.get("Revision", ["master"])[0]
            if revision not in repos[model_id]:
                return self.modelscope_not_found("revision %s of model %s not found" % (revision, model_id))
            repo = repos[model_id][revision]
            if parts[5:] == ["repo", "files"]:
                listing = [modelscope_entry(item) for item in repo["files"].values()]
                return self.send_json(200, {"Code": 200, "Success": True, "Data": {"Files": listing}})
            if parts[5:] == ["repo"]:
                path = query.get("FilePath", [""])[0]
                if path not in repo["files"]:
                    return self.modelscope_not_found("file %s not in %s@%s" % (path, model_id, revision))
                return self.send_file("modelscope", repo, path)
            return self.modelscope_not_found("no such route: %s" % self.path)

        # Hugging Face API
        def huggingface_repo(self, model_id, revision):
            """The repo, or None after answering 404 the way the hub does."""
            if model_id not in repos:
                self.send_json(404, {"error": "Repository %s not found" % model_id},
                               [("X-Error-Code", "RepoNotFound")])
                return None
            for name, repo in repos[model_id].items():
                if revision in (name, repo["commit"]):
                    return repo
            self.send_json(404, {"error": "Revision %s of %s not found" % (revision, model_id)},
                           [("X-Error-Code", "RevisionNotFound")])
            return None

        def huggingface_info(self, model_id, revision):
            repo = self.huggingface_repo(model_id, revision)
            if repo is not None:
                siblings = [huggingface_entry(item) for item in repo["files"].values()]
                self.send_json(200, {"id": model_id, "modelId": model_id, "sha": repo["commit"], "siblings": siblings})

        def huggingface_tree(self, model_id, revision, folder):
            repo = self.huggingface_repo(model_id, revision)
            if repo is not None:
                prefix = folder.rstrip("/") + "/" if folder else ""
                tree = []
                for item in repo["files"].values():
                    if item["path"].startswith(prefix):
                        entry = {"type": "file", "path": item["path"], "size": item["size"],
                                 "oid": item.get("git_sha1") or ""}
                        if is_lfs(item):
                            entry["lfs"] = {"oid": item["sha256"], "size": item["size"], "pointerSize": 134}
                        tree.append(entry)
                self.send_json(200, tree)

        def huggingface_resolve(self, model_id, revision, path):
            repo = self.huggingface_repo(model_id, revision)
            if repo is None:
                return None
            if path not in repo["files"]:
                return self.send_json(404, {"error": "Entry %s not found in %s@%s" % (path, model_id, revision)},
                                      [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", repo["commit"])])
            return self.send_file("huggingface", repo, path)

        def send_file(self, api, repo, path):
            item = repo["files"][path]
            full, size = os.path.join(repo["dir"], path), item["size"]
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                start = int(ranged[len("bytes="):].split("-")[0] or 0)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(206)
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size - start))
            self.send_header("Accept-Ranges", "bytes")
            if api == "huggingface":
                self.send_header("ETag", '"%s"' % etag_of(item))
                self.send_header("X-Repo-Commit", repo["commit"])
            self.end_headers()
            if self.command == "HEAD":
                return None
            sent = 0
            try:
                with open(full, "rb") as handle:
                    if not rate:  # the kernel copies file to socket (sendfile): no Python in the data path
                        while start + sent < size:
                            count = self.connection.sendfile(handle, start + sent, min(SENDFILE_STEP, size - start - sent))
                            if not count:
                                break
                            sent += count
                        return None
                    handle.seek(start)
                    for block in iter(lambda: handle.read(CHUNK), b""):
                        self.wfile.write(block)
                        sent += len(block)
                        time.sleep(len(block) / rate)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away; it resumes with a Range request
            finally:
                if log_path:
                    with log_lock, open(log_path, "a") as log:
                        log.write(json.dumps({"api": api, "path": path, "revision": repo["name"], "range_start": start,
                                              "bytes": sent, "complete": start + sent == size}) + "\n")
            return None

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the node's private address)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default="")
    parser.add_argument("--rate", type=float, default=0.0, help="bytes per second per download; 0 = unlimited")
    parser.add_argument("--idle-exit", type=float, default=0.0,
                        help="exit after this many seconds with no request open; 0 = serve until stopped")
    parser.add_argument("--first-request-within", type=float, default=0.0,
                        help="with --idle-exit: the limit before the first request (default 5 x --idle-exit)")
    parser.add_argument("--repo", nargs=3, action="append", metavar=("MODEL_ID", "REVISION", "DIR"), required=True)
    options = parser.parse_args()
    repos = {}
    for model_id, revision, directory in options.repo:
        repos.setdefault(model_id, {})[revision] = {
            "name": revision,
            "dir": directory,
            "files": {item["path"]: item for item in scan(directory)},
            # A stable stand-in for the commit id a real hub resolves the revision to.
            "commit": hashlib.sha1(("%s@%s" % (model_id, revision)).encode()).hexdigest(),
        }
    activity = Activity()
    server = ThreadingHTTPServer((options.host, options.port), build_handler(repos, options.log, options.rate, activity))
    if options.idle_exit > 0:
        before_first = options.first_request_within or 5 * options.idle_exit
        threading.Thread(target=exit_when_idle, args=(server, activity, options.idle_exit, before_first),
                         daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
