"""Serve the serving image's `docker save` archive to the other nodes while it is being written.

The serving_image role starts it on the build node, bound to the node's private address, only
while the other nodes copy the image (with image_fetch.py, which loads what arrives into their
Docker engine as it arrives). Saving, sending and loading overlap, as in one
`docker save | docker load`, but the archive is also kept in a file on the build node, so a copy
that breaks resumes with a Range request instead of saving and sending the image again.

DIR/image.tar is written by one `docker save IMAGE_ID`, hashed as it is written; DIR's marker
(the weights phase's format, with the image ID, the archive's size and SHA-256 and an archive
id) is written once it is complete. A mirror started again on a complete archive of the same
image serves that file and saves nothing.

Routes:
  GET /status    {"image_id", "archive_id", "written", "done", "size", "sha256", "error"}
  GET /archive   the archive from the Range start (bytes=N-), chunked, following the file while
                 docker save still writes it; a body cut before its last chunk is resumed.
Every answer carries X-Archive-Id: bytes of two different archives (a save started again after
an interrupted one) are never put together.

Usage: python3 image_mirror.py --port P [--host ADDR] --image IMAGE_ID --dir DIR
           [--idle-exit SECONDS]
Standard library only: it runs with the node's own python3, with weights_mirror.py and
_weights.py (the collection's module_utils/_weights.py) shipped beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from http.server import ThreadingHTTPServer

try:  # on a node: the role ships these beside this script
    import _weights
    from weights_mirror import Activity, MirrorHandler, exit_when_idle
except ImportError:  # in a checkout of the collection
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.join(here, "..", "..", "..", "plugins", "module_utils"),
                    os.path.join(here, "..", "..", "weights", "files")]
    import _weights
    from weights_mirror import Activity, MirrorHandler, exit_when_idle

ARCHIVE = "image.tar"
CHUNK = 1 << 20
SENDFILE_STEP = 16 << 20
WAIT_STEP = 5.0  # seconds a sender waits for more bytes before it looks again


class Archive:
    """The archive file and how far docker save has written it (shared by the senders)."""

    def __init__(self, directory, image_id, docker):
        self.directory = directory
        self.path = os.path.join(directory, ARCHIVE)
        self.image_id = image_id
        self.docker = docker
        self.condition = threading.Condition()
        self.written, self.done, self.error, self.sha256 = 0, False, "", ""
        marker = _weights.read_marker(directory)
        entry = (marker or {}).get("files", [{}])[0]
        if (marker and marker.get("image_id") == image_id and os.path.isfile(self.path)
                and os.path.getsize(self.path) == entry.get("size")):
            self.archive_id = marker["archive_id"]
            self.written, self.done, self.sha256 = entry["size"], True, entry["sha256"]
        else:
            self.archive_id = uuid.uuid4().hex

    def status(self):
        with self.condition:
            return {"image_id": self.image_id, "archive_id": self.archive_id, "written": self.written,
                    "done": self.done, "size": self.written if self.done and not self.error else None,
                    "sha256": self.sha256 or None, "error": self.error or None}

    def write(self):
        """docker save into the file; any failure (the engine, a full disk) ends every sender."""
        try:
            self.save()
        except Exception as error:  # noqa: BLE001 - senders must not wait for a save that died
            with self.condition:
                self.error = self.error or "saving %s failed: %s" % (self.image_id, error)
                self.done = True
                self.condition.notify_all()
            print(self.error, flush=True)

    def save(self):
        """docker save into the file, hashed on the way; the marker once it is complete."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        try:
            os.unlink(os.path.join(self.directory, _weights.MARKER))
        except FileNotFoundError:
            pass
        digest = hashlib.sha256()
        with tempfile.TemporaryFile() as errors, open(self.path, "wb") as handle:
            process = subprocess.Popen(self.docker + ["save", self.image_id], stdout=subprocess.PIPE, stderr=errors)
            for chunk in iter(lambda: process.stdout.read(CHUNK), b""):
                handle.write(chunk)
                handle.flush()  # senders read the file: what is counted must be in it
                digest.update(chunk)
                with self.condition:
                    self.written += len(chunk)
                    self.condition.notify_all()
            code = process.wait()
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-2000:]
        if code == 0:
            entry = {"path": ARCHIVE, "size": self.written, "sha256": digest.hexdigest()}
            _weights._write_json(os.path.join(self.directory, _weights.MARKER),
                                 {"format": _weights.MARKER_FORMAT, "image_id": self.image_id,
                                  "archive_id": self.archive_id, "files": [entry]})
        with self.condition:
            if code == 0:
                self.sha256 = entry["sha256"]
            else:
                self.error = "docker save %s failed (exit %d): %s" % (self.image_id, code, message)
            self.done = True
            self.condition.notify_all()
        print(self.error or "saved %s: %d bytes, sha256 %s" % (self.image_id, self.written, self.sha256), flush=True)

    def wait_beyond(self, offset):
        """(bytes written, done, error) once more than offset bytes are written, the save has
        ended, or WAIT_STEP seconds have passed."""
        with self.condition:
            self.condition.wait_for(lambda: self.written > offset or self.done, WAIT_STEP)
            return self.written, self.done, self.error


class ArchiveHandler(MirrorHandler):
    """The weights mirror's handler (quiet, counted for --idle-exit) with this mirror's routes."""

    archive = None
    activity = Activity()

    def route(self, parts, _query):
        if parts == ["status"]:
            self.send_json(200, self.archive.status(), [("X-Archive-Id", self.archive.archive_id)])
        elif parts == ["archive"]:
            self.send_archive()
        else:
            return False
        return True

    def send_archive(self):
        ranged = self.headers.get("Range", "")
        offset = int(ranged[len("bytes="):].split("-")[0] or 0) if ranged.startswith("bytes=") else 0
        if self.archive.status()["error"]:
            self.send_json(503, self.archive.status(), [("X-Archive-Id", self.archive.archive_id)])
            return
        self.send_response(206 if offset else 200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Archive-Id", self.archive.archive_id)
        self.end_headers()
        try:
            with open(self.archive.path, "rb") as handle:
                while True:
                    written, done, error = self.archive.wait_beyond(offset)
                    if error:  # no last chunk: the reader sees a cut body and asks /status why
                        self.close_connection = True
                        return
                    if offset < written:
                        offset += self.send_chunk(handle, offset, min(SENDFILE_STEP, written - offset))
                    elif done:
                        self.wfile.write(b"0\r\n\r\n")
                        return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the reader went away; it resumes with a Range request

    def send_chunk(self, handle, offset, count):
        """One chunk of count bytes from offset; the kernel copies file to socket (sendfile)."""
        self.wfile.write(b"%x\r\n" % count)
        self.wfile.flush()
        sent = 0
        while sent < count:
            step = self.connection.sendfile(handle, offset + sent, count - sent)
            if not step:
                raise BrokenPipeError("the archive ended before the bytes counted as written")
            sent += step
        self.wfile.write(b"\r\n")
        return count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the node's private address)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--image", required=True, help="the image ID to save")
    parser.add_argument("--dir", required=True, help="where the archive is kept")
    parser.add_argument("--docker", default="docker", help="the docker CLI")
    parser.add_argument("--idle-exit", type=float, default=0.0,
                        help="exit after this many seconds with no request open (5 x before the first); 0 = never")
    options = parser.parse_args()
    archive = Archive(options.dir, options.image, [options.docker])
    if not archive.done:
        threading.Thread(target=archive.write, daemon=True).start()
    else:
        print("serving the archive of %s already on disk (%d bytes)" % (options.image, archive.written), flush=True)

    class Handler(ArchiveHandler):
        pass

    Handler.archive = archive
    server = ThreadingHTTPServer((options.host, options.port), Handler)
    if options.idle_exit > 0:
        threading.Thread(target=exit_when_idle, args=(server, Handler.activity, options.idle_exit, 5 * options.idle_exit),
                         daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
