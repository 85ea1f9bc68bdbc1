"""Fetch a model's files over the Hugging Face file API, resuming partial files.

Used by the weights role for the huggingface source (huggingface.co or a mirror of it) and for
the fan-out from the fetch node's weights_mirror.py. Why not the huggingface_hub client: since
its 1.x/2.x releases it downloads each file to a process-unique temporary name and deletes it on
failure, so a killed or dropped download starts that file again from byte 0 (read in
huggingface_hub 2.4.0, file_download._download_to_tmp_and_move). For files of tens of GB that
is the failure users complain about most.

Each file goes to DEST/<path>.incomplete and is renamed to DEST/<path> once it has the listed
size; a rerun (or a retry after a dropped connection) continues with an HTTP Range request from
the bytes already there. Hashes are not checked here: the role verifies every file against the
listing before it publishes anything.

Usage: python3 weights_fetch.py --endpoint URL --model OWNER/NAME --revision REV --dest DIR
           --listing FILE   (JSON [{"path": ..., "size": ...}], the files to fetch)
The token, if any, comes from the HF_TOKEN environment variable; it is sent to the endpoint's
own host only, never to a host a redirect points to (the hub redirects large files to a CDN
with signed URLs). Standard library only: it runs with the node's own python3, with _weights.py
(the collection's module_utils/_weights.py, shipped beside it) for the partial-file suffix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import quote, urljoin, urlsplit

try:  # on a node: the role ships _weights.py beside this script
    from _weights import PARTIAL_SUFFIX
except ImportError:  # in a checkout of the collection
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "plugins", "module_utils"))
    from _weights import PARTIAL_SUFFIX

CHUNK = 1 << 20
REDIRECTS = 10


class FetchError(Exception):
    """A failure a retry will not fix (the hub said no)."""


def open_response(url, headers, token_host, token):
    """GET url following redirects; Authorization goes only to token_host."""
    for _redirect in range(REDIRECTS):
        parts = urlsplit(url)
        connection_class = HTTPSConnection if parts.scheme == "https" else HTTPConnection
        connection = connection_class(parts.netloc, timeout=60)
        request_headers = dict(headers)
        if token and parts.netloc == token_host:
            request_headers["Authorization"] = "Bearer " + token
        target = parts.path + ("?" + parts.query if parts.query else "")
        connection.request("GET", target, headers=request_headers)
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308):
            url = urljoin(url, response.getheader("Location"))
            response.read()
            connection.close()
            continue
        return connection, response
    raise FetchError("more than %d redirects for %s" % (REDIRECTS, url))


def hub_error(response):
    message = response.getheader("X-Error-Message") or response.read(2000).decode("utf-8", "replace")
    try:
        message = json.loads(message).get("error", message)
    except (ValueError, AttributeError):
        pass
    return "HTTP %d (%s)" % (response.status, message.strip())


def fetch_once(url, target, size, token_host, token):
    """Continue target's partial file up to size. Returns bytes received."""
    partial = target + PARTIAL_SUFFIX
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    if have > size:  # not a prefix of this file: start over
        os.unlink(partial)
        have = 0
    received = 0
    if have < size:
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = "bytes=%d-" % have
        connection, response = open_response(url, headers, token_host, token)
        try:
            if response.status == 200 and have:
                have = 0  # the server ignored the range: take the whole body
            elif response.status not in (200, 206):
                error = hub_error(response)
                if response.status >= 500 or response.status == 429:
                    raise OSError(error)
                raise FetchError(error)
            # No fsync here: publish hashes this file and syncs it before the marker says it is good.
            buffer = memoryview(bytearray(CHUNK))
            with open(partial, "r+b" if have else "wb", buffering=0) as handle:
                handle.seek(have)
                handle.truncate()
                for count in iter(lambda: response.readinto(buffer), 0):
                    handle.write(buffer[:count])
                    received += count
        finally:
            connection.close()
    actual = os.path.getsize(partial)
    if actual != size:
        raise OSError("%d of %d bytes after the transfer ended" % (actual, size))
    os.replace(partial, target)
    return received


def fetch_file(options, item, token):
    target = os.path.join(options.dest, item["path"])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    url = "%s/%s/resolve/%s/%s" % (options.endpoint.rstrip("/"), options.model, quote(options.revision, safe=""),
                                   quote(item["path"]))
    token_host = urlsplit(options.endpoint).netloc
    if os.path.isfile(target) and os.path.getsize(target) == item["size"]:
        return  # finished by an earlier run
    for attempt in range(1, options.attempts + 1):
        try:
            received = fetch_once(url, target, item["size"], token_host, token)
            print("fetched %s (%d bytes received)" % (item["path"], received), flush=True)
            return
        except FetchError as error:
            raise FetchError("%s: %s" % (item["path"], error))
        except (OSError, HTTPException) as error:  # a dropped connection: retry from what arrived
            if attempt == options.attempts:
                raise FetchError("%s: %s (after %d attempts)" % (item["path"], error, attempt))
            print("%s: %s; retrying (attempt %d of %d)" % (item["path"], error, attempt + 1, options.attempts),
                  flush=True)
            time.sleep(min(30, 2 ** attempt))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--dest", required=True)
    parser.add_argument("--listing", required=True)
    parser.add_argument("--parallel", type=int, default=4, help="files fetched at once")
    parser.add_argument("--attempts", type=int, default=5, help="tries per file on network errors")
    options = parser.parse_args()
    with open(options.listing) as handle:
        items = json.load(handle)
    token = os.environ.get("HF_TOKEN", "")
    # Large files first, so the longest transfer starts at once.
    items.sort(key=lambda item: -item["size"])
    with ThreadPoolExecutor(max_workers=max(1, options.parallel)) as pool:
        futures = [pool.submit(fetch_file, options, item, token) for item in items]
        errors = []
        for future in futures:
            try:
                future.result()
            except FetchError as error:
                errors.append(str(error))
    if errors:
        print("failed: " + "; ".join(errors), file=sys.stderr, flush=True)
        return 1
    print("all %d files fetched" % len(items), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
