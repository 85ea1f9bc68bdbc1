"""Serve a verified model folder to the other nodes over the Hugging Face file API.

The weights role starts it on the fetch node, bound to the node's private address, only while
the other nodes fetch (with weights_fetch.py, which asks for GET /<id>/resolve/<rev>/<path>
with Range resume). It serves only a folder the role verified and published (one with the
role's marker, whose listing it trusts), and nothing outside that listing.

--log writes one JSON line per file body sent (api, path, revision, range start, bytes), so
operators and tests can count what was served. --idle-exit ends the mirror once no request has
been open for that many seconds (five times that before the first request): a fan-out whose
run was interrupted does not leave the model served on the node's address.

Usage: python3 weights_mirror.py --port P [--host ADDR] [--log FILE]
           [--idle-exit SECONDS [--first-request-within SECONDS]]
           --repo OWNER/NAME REVISION DIR [--repo ...]
Standard library only: it runs with the node's own python3, with _weights.py (the collection's
module_utils/_weights.py, shipped beside it) for the marker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

try:  # on a node: the role ships _weights.py beside this script
    import _weights
except ImportError:  # in a checkout of the collection
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "plugins", "module_utils"))
    import _weights

SENDFILE_STEP = 16 << 20  # bytes per sendfile call: how precisely an interrupted body is logged


def verified_listing(directory):
    """The files of a folder the role published, from its marker; SystemExit for any other folder."""
    marker = _weights.read_marker(directory)
    if marker is None:
        raise SystemExit("%s has no %s: only a folder the role verified is served" % (directory, _weights.MARKER))
    return marker["files"]


def load_repos(specs, listing=verified_listing):
    """{model_id: {revision: repo}} for --repo MODEL_ID REVISION DIR triples."""
    repos = {}
    for model_id, revision, directory in specs:
        if not os.path.isdir(directory):
            raise SystemExit("no model folder at %s" % directory)
        repos.setdefault(model_id, {})[revision] = {
            "name": revision,
            "dir": directory,
            "files": {item["path"]: item for item in listing(directory)},
            # A stable stand-in for the commit id a real hub resolves the revision to.
            "commit": hashlib.sha1(("%s@%s" % (model_id, revision)).encode()).hexdigest(),
        }
    return repos


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


class MirrorHandler(BaseHTTPRequestHandler):
    """The resolve route. Subclasses (the test hub) add routes in route() and pace copy_body()."""

    protocol_version = "HTTP/1.1"
    repos = {}
    log_path = ""
    log_lock = threading.Lock()
    activity = Activity()

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
        with self.activity:
            url = urlparse(self.path)
            parts = [unquote(part) for part in url.path.strip("/").split("/")]
            if not self.route(parts, parse_qs(url.query)):
                self.send_json(404, {"error": "no such route: %s" % url.path})

    def route(self, parts, _query):
        """Answer the request and return True, or return False for a 404."""
        if len(parts) >= 5 and parts[2] == "resolve":
            self.huggingface_resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
            return True
        return False

    def huggingface_repo(self, model_id, revision):
        """The repo, or None after answering 404 the way the hub does."""
        if model_id not in self.repos:
            self.send_json(404, {"error": "Repository %s not found" % model_id}, [("X-Error-Code", "RepoNotFound")])
            return None
        for name, repo in self.repos[model_id].items():
            if revision in (name, repo["commit"]):
                return repo
        self.send_json(404, {"error": "Revision %s of %s not found" % (revision, model_id)},
                       [("X-Error-Code", "RevisionNotFound")])
        return None

    def huggingface_resolve(self, model_id, revision, path):
        repo = self.huggingface_repo(model_id, revision)
        if repo is None:
            return
        if path not in repo["files"]:
            self.send_json(404, {"error": "Entry %s not found in %s@%s" % (path, model_id, revision)},
                           [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", repo["commit"])])
            return
        self.send_file("huggingface", repo, path, self.huggingface_headers(repo, repo["files"][path]))

    def huggingface_headers(self, repo, _item):
        return [("X-Repo-Commit", repo["commit"])]

    def send_file(self, api, repo, path, headers=()):
        """The file's bytes from the Range start (206 / 416), logged once the body ends."""
        size = repo["files"][path]["size"]
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start = int(ranged[len("bytes="):].split("-")[0] or 0)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = [0]
        try:
            with open(os.path.join(repo["dir"], path), "rb") as handle:
                self.copy_body(handle, start, size, sent)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; it resumes with a Range request
        finally:
            if self.log_path:
                with self.log_lock, open(self.log_path, "a") as log:
                    log.write(json.dumps({"api": api, "path": path, "revision": repo["name"], "range_start": start,
                                          "bytes": sent[0], "complete": start + sent[0] == size}) + "\n")

    def copy_body(self, handle, start, size, sent):
        """The kernel copies file to socket (sendfile): no Python in the data path. sent[0]
        counts the bytes sent so far, for the log."""
        while start + sent[0] < size:
            count = self.connection.sendfile(handle, start + sent[0], min(SENDFILE_STEP, size - start - sent[0]))
            if not count:
                break
            sent[0] += count


def argument_parser(description):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the node's private address)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default="")
    parser.add_argument("--idle-exit", type=float, default=0.0,
                        help="exit after this many seconds with no request open; 0 = serve until stopped")
    parser.add_argument("--first-request-within", type=float, default=0.0,
                        help="with --idle-exit: the limit before the first request (default 5 x --idle-exit)")
    parser.add_argument("--repo", nargs=3, action="append", metavar=("MODEL_ID", "REVISION", "DIR"), required=True)
    return parser


def serve(handler_class, options):
    """Serve until stopped, or until idle for --idle-exit seconds."""
    server = ThreadingHTTPServer((options.host, options.port), handler_class)
    if options.idle_exit > 0:
        before_first = options.first_request_within or 5 * options.idle_exit
        threading.Thread(target=exit_when_idle, args=(server, handler_class.activity, options.idle_exit, before_first),
                         daemon=True).start()
    server.serve_forever()


def main():
    options = argument_parser(__doc__).parse_args()

    class Handler(MirrorHandler):
        repos = load_repos(options.repo)
        log_path = options.log

    serve(Handler, options)


if __name__ == "__main__":
    main()
