"""Copy the serving image from the build node's image_mirror.py, loading it while it arrives.

The serving_image role runs it as a transient systemd unit on each node that lacks the image.
Every byte that arrives goes to `docker load` (as in one `docker save | docker load`), to
DIR/image.tar.part (so a copy that breaks resumes: those bytes are loaded first, then the rest
is asked for with a Range request) and to a SHA-256, which must equal the build node's once the
archive is complete. DIR/image.tar.source holds the mirror's archive id the bytes came from: a
partial file from another archive is started again. Once `docker load` has succeeded,
DIR/fetched.json says what was loaded ({"image_id", "archive_id", "size", "sha256", "load_output"}).

Usage: python3 image_fetch.py --endpoint http://HOST:PORT --dest DIR [--docker DOCKER]
           [--attempts N]
Standard library only: it runs with the node's own python3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection, HTTPException
from urllib.parse import urlsplit

CHUNK = 1 << 20
PARTIAL = "image.tar.part"
SOURCE = "image.tar.source"
RESULT = "fetched.json"


class CopyError(Exception):
    """A failure a retry will not fix."""


def request(endpoint, path, headers=None):
    connection = HTTPConnection(urlsplit(endpoint).netloc, timeout=120)
    connection.request("GET", path, headers=headers or {})
    return connection, connection.getresponse()


def status(endpoint):
    connection, response = request(endpoint, "/status")
    try:
        if response.status != 200:
            raise CopyError("the mirror's /status answered HTTP %d" % response.status)
        return json.loads(response.read())
    finally:
        connection.close()


class Copy:
    """The bytes that arrived: written to the partial file, the load's stdin and the hash."""

    def __init__(self, load):
        self.load = load
        self.digest = hashlib.sha256()
        self.have = 0

    def take(self, chunk):
        self.digest.update(chunk)
        try:
            self.load.stdin.write(chunk)
        except BrokenPipeError:
            raise CopyError("docker load stopped reading (its output follows)") from None
        self.have += len(chunk)

    def replay(self, handle):
        """Feed the bytes an earlier, interrupted copy kept."""
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            self.take(chunk)

    def receive(self, endpoint, archive_id, handle):
        """The rest of the archive from self.have; True once its last chunk came."""
        connection, response = request(endpoint, "/archive", {"Range": "bytes=%d-" % self.have})
        try:
            if response.status == 503:  # the save failed: the mirror says why
                raise CopyError(json.loads(response.read()).get("error") or "the mirror cannot serve the archive")
            if response.status not in (200, 206):
                raise OSError("the mirror answered HTTP %d: %s" % (response.status, response.read(2000)))
            if response.getheader("X-Archive-Id") != archive_id:
                raise CopyError("the build node started another archive during the copy; rerun to copy it")
            if response.status == 200 and self.have:
                raise CopyError("the mirror ignored the Range request")
            buffer = memoryview(bytearray(CHUNK))
            for count in iter(lambda: response.readinto(buffer), 0):
                try:
                    handle.write(buffer[:count])
                except OSError as error:  # a full disk here is no network error: no retry fixes it
                    raise CopyError("keeping the copy in %s failed: %s" % (handle.name, error)) from None
                self.take(buffer[:count])
            return True  # http.client raises IncompleteRead on a chunked body cut short
        finally:
            connection.close()


def finish_load(load, output):
    try:
        load.stdin.close()
    except BrokenPipeError:
        pass  # it stopped reading: its exit code and output say why
    code = load.wait()
    output.seek(0)
    return code, output.read().decode(errors="replace").strip()


def copy(options):
    os.makedirs(options.dest, mode=0o700, exist_ok=True)
    if os.path.exists(os.path.join(options.dest, RESULT)):
        os.unlink(os.path.join(options.dest, RESULT))
    first = status(options.endpoint)
    if first["error"]:
        raise CopyError(first["error"])
    source_path = os.path.join(options.dest, SOURCE)
    try:
        with open(source_path) as handle:
            kept_from = handle.read().strip()
    except OSError:
        kept_from = ""
    partial = os.path.join(options.dest, PARTIAL)
    if kept_from != first["archive_id"] and os.path.exists(partial):
        print("the bytes kept from an earlier copy belong to another archive: starting again", flush=True)
        os.unlink(partial)
    with open(source_path, "w") as handle:
        handle.write(first["archive_id"] + "\n")
    with tempfile.TemporaryFile() as output:
        load = subprocess.Popen([options.docker, "load"], stdin=subprocess.PIPE, stdout=output,
                                stderr=subprocess.STDOUT)
        received = Copy(load)
        try:
            with open(partial, "a+b") as handle:
                handle.seek(0)
                received.replay(handle)
                if received.have:
                    print("loaded the %d bytes an earlier copy kept; fetching the rest" % received.have, flush=True)
                # Attempts count only failures in a row without progress: a slow save that
                # sends nothing for a while is not a broken network.
                attempt = 0
                while True:
                    before = received.have
                    try:
                        received.receive(options.endpoint, first["archive_id"], handle)
                        break
                    except (OSError, HTTPException) as error:
                        attempt = 1 if received.have > before else attempt + 1
                        if attempt >= options.attempts:
                            raise CopyError("%s (%d attempts in a row without progress, %d bytes here)"
                                            % (error, attempt, received.have))
                        print("%s; resuming from byte %d (attempt %d of %d)"
                              % (error, received.have, attempt + 1, options.attempts), flush=True)
                        time.sleep(min(30, 2 ** attempt))
            final = status(options.endpoint)
            if final["error"]:
                raise CopyError(final["error"])
            actual = received.digest.hexdigest()
            if (received.have, actual) != (final["size"], final["sha256"]):
                os.unlink(partial)  # the next run copies it again
                raise CopyError("the copy has %d bytes with SHA-256 %s, the build node's archive %s bytes with %s; "
                                "removed, rerun to copy it again" % (received.have, actual, final["size"], final["sha256"]))
        except CopyError as error:
            load.kill()
            _code, load_output = finish_load(load, output)
            raise CopyError("%s%s" % (error, "; docker load said: " + load_output[-1500:] if load_output else "")) from None
        except BaseException:
            load.kill()
            finish_load(load, output)
            raise
        code, load_output = finish_load(load, output)
    if code != 0:
        raise CopyError("docker load failed (exit %d): %s" % (code, load_output[-2000:]))
    result = {"image_id": final["image_id"], "archive_id": final["archive_id"], "size": received.have,
              "sha256": actual, "load_output": load_output[-2000:]}
    with open(os.path.join(options.dest, RESULT), "w") as handle:
        json.dump(result, handle)
    print("loaded %s: %d bytes, sha256 %s (%s)" % (final["image_id"], received.have, actual, load_output), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="the build node's mirror, http://HOST:PORT")
    parser.add_argument("--dest", required=True, help="where the partial archive is kept")
    parser.add_argument("--docker", default="docker", help="the docker CLI")
    parser.add_argument("--attempts", type=int, default=5, help="tries on network errors")
    options = parser.parse_args()
    try:
        copy(options)
    except CopyError as error:
        print("failed: %s" % error, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
