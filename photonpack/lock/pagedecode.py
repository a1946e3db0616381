"""Big index pages decoded in a helper process, keeping the files the lock's targets can use.

A JSON index page is decoded whole, with the GIL held, before any of its files is
looked at: pydantic-core's page (6.9 MB, 15,000 files) takes ~60 ms, the realistic
set's pages (15.6 MB) ~0.2 s, all on the one core pip's resolver needs too (a tenth
of a cold lock's CPU in py-spy). :class:`PageDecoder` sends a big page's bytes to one
helper process (this Python, this photonpack: :func:`serve`), which decodes them and
answers with the file entries some target may install, in the page's order: sdists,
names that are no wheel's (pip reports those), and wheels with one of the targets'
tags. That is the test :meth:`~photonpack.lock.shared._Page.links_for` applies per
target, so no finder sees a different list. The helper starts when the lock does,
while pip is still being imported; a page that arrives before it is ready is decoded
here (a warm HTTP cache serves the first pages at once).

Whatever goes wrong with the helper (it does not start, dies, answers something
else, or the page is no JSON it can decode) makes the page decode in this process,
as before: the result, or the error, is the same.
"""

from __future__ import annotations

import contextlib
import json
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from photonpack.lock.wheeltags import wheel_tags

__all__ = ["BIG_PAGE", "PageDecoder", "kept_files", "serve"]

# Pages at least this big (bytes) go to the helper; a smaller one costs less to decode
# than to send (the realistic set: 8 pages of 22 are 94 % of the bytes).
BIG_PAGE = 256 << 10
_HELLO = b"photonpack page decoder 1\n"
_LENGTH = struct.Struct(">Q")
# This photonpack, wherever it was imported from (an installation, a checkout on the path).
# At the end of its input the helper leaves without the interpreter's teardown, which the
# lock would wait for while it closes the helper.
_CODE = (
    "import os, sys; sys.path.insert(0, sys.argv[1]); "
    "from photonpack.lock.pagedecode import serve; serve(); os._exit(0)"
)
_ROOT = str(Path(__file__).resolve().parents[2])


def kept_files(content: bytes, tags: frozenset[str]) -> list[Any]:
    """The file entries of the JSON page ``content`` that a target with one of ``tags`` may
    install: every entry whose name is no valid wheel's, and the wheels with such a tag."""
    files = list(json.loads(content).get("files", []))
    return [f for f in files if _installable(wheel_tags(str(f.get("filename", ""))), tags)]


def _installable(wheel: frozenset[str] | None, tags: frozenset[str]) -> bool:
    return wheel is None or not wheel.isdisjoint(tags)


class PageDecoder:
    """One helper process, asked for one page at a time; None wherever it cannot answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._greeted = False
        self._broken = False

    def start(self, *, wait: bool = False) -> None:
        """Start the helper now (it answers once it has greeted); quietly nothing if it
        cannot start. ``wait``: until it has greeted, or failed."""
        with self._lock:
            if self._process is None and not self._broken:
                try:
                    self._process = subprocess.Popen(
                        [sys.executable, "-c", _CODE, _ROOT],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                except OSError:
                    self._broken = True
            if wait:
                self._ready(wait=True)

    def files(self, content: bytes, tags: frozenset[str]) -> list[Any] | None:
        """:func:`kept_files` of ``content``, from the helper; None where this process
        should decode the page itself (also while the helper is still starting: a warm
        HTTP cache gives the first pages before it is ready)."""
        self.start()
        with self._lock:
            process = self._process
            if not self._ready(wait=False):
                return None
            assert process is not None and process.stdin is not None
            assert process.stdout is not None
            try:
                _send(process.stdin, json.dumps(sorted(tags)).encode(), content)
                kind, answer = _receive(process.stdout), _receive(process.stdout)
                files = json.loads(answer) if kind == b"files" else None
            except (OSError, EOFError, ValueError):
                self._broken = True
                self._stop(process)
                return None
        return files if isinstance(files, list) else None

    def _ready(self, *, wait: bool) -> bool:
        """Whether the helper has greeted (reading its greeting if it is there, or if
        ``wait``); a wrong greeting or none breaks it. Called holding the lock."""
        process = self._process
        if process is None or self._broken:
            return False
        if self._greeted:
            return True
        assert process.stdout is not None
        if not wait and not _readable(process.stdout):
            return False
        try:
            greeting = process.stdout.readline()
        except OSError:
            greeting = b""
        if greeting != _HELLO:
            self._broken = True
            self._stop(process)
            return False
        self._greeted = True
        return True

    def close(self) -> None:
        """Let the helper end (it sees the end of its input)."""
        with self._lock:
            process, self._process, self._broken = self._process, None, True
        if process is not None:
            self._stop(process)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        with contextlib.suppress(OSError):  # it ended already
            process.stdin.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def serve() -> None:
    """The helper's loop: a request is the tags (a JSON list) and a page's bytes; the answer
    ``files`` and the kept entries (JSON), or ``error`` and why, where the page does not
    decode (the requesting process decodes it, and raises what it raises)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(_HELLO)
    stdout.flush()
    while True:
        try:
            tags, content = _receive(stdin), _receive(stdin)
        except EOFError:
            return
        try:
            files = kept_files(content, frozenset(json.loads(tags)))
            reply = (b"files", json.dumps(files).encode())
        except Exception as exc:  # noqa: BLE001 - see above
            reply = (b"error", repr(exc).encode())
        _send(stdout, *reply)


def _readable(stream: IO[bytes]) -> bool:
    """Whether ``stream`` (a pipe) has something to read now; False where that cannot be told."""
    try:
        return bool(select.select([stream], [], [], 0)[0])
    except (OSError, ValueError):  # a platform whose select takes no pipes
        return False


def _send(stream: IO[bytes], *parts: bytes) -> None:
    for data in parts:
        stream.write(_LENGTH.pack(len(data)))
        stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes:
    header = stream.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        raise EOFError("the other side closed")
    (size,) = _LENGTH.unpack(header)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the other side closed")
    return data
