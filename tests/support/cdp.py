"""Drive Debian's headless Chromium over the DevTools protocol, through ``--remote-debugging-pipe``.

No WebSocket library is needed: Chromium reads commands from fd 3 and writes
replies and events to fd 4, each message JSON ended by a NUL byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["Browser"]


class Browser:
    """One headless Chromium with one page (``evaluate``, ``navigate``, ``wait_for``)."""

    def __init__(self, chromium: str, profile: Path, flags: list[str]) -> None:
        low_reader, self._to_chrome = os.pipe()
        self._from_chrome, low_writer = os.pipe()
        # Above 4: placing one on 3 or 4 must not overwrite the other.
        reader = fcntl.fcntl(low_reader, fcntl.F_DUPFD, 10)
        writer = fcntl.fcntl(low_writer, fcntl.F_DUPFD, 10)
        os.close(low_reader)
        os.close(low_writer)
        # bash (dash takes no fd above 9) puts the pipe ends on the fds 3 and 4 Chromium reads.
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{reader} 4>&{writer}',
             chromium, *flags, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"],
            pass_fds=(reader, writer), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(reader)
        os.close(writer)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self._session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        self.send("Page.enable", session=True)
        self.send("Network.enable", session=True)

    def send(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events met on the way are kept)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited when it is a promise)."""
        result = self.send(
            "Runtime.evaluate", session=True, expression=expression,
            awaitPromise=True, returnByValue=True,
        )  # fmt: skip
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except AssertionError:  # the page is between documents
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"the page never had {expression} within {timeout} s")

    def requested(self) -> list[str]:
        """Every URL the page asked the network for, so far."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def outcomes(self, timeout: float = 30) -> dict[str, str]:
        """Each URL asked for and what became of it, once every request has ended.

        ``loaded``; ``blocked:<reason>`` when the browser never sent it (the page's
        Content-Security-Policy: ``blocked:csp``); ``failed:<error>`` otherwise.
        """
        deadline = time.monotonic() + timeout
        while True:
            asked = {
                e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in self.events
                if e.get("method") == "Network.requestWillBeSent"
            }
            ended: dict[str, str] = {}
            for e in self.events:
                method, params = e.get("method"), e.get("params", {})
                if method == "Network.loadingFinished":
                    ended[params["requestId"]] = "loaded"
                elif method == "Network.loadingFailed":
                    reason = params.get("blockedReason")
                    ended[params["requestId"]] = (
                        f"blocked:{reason}" if reason else f"failed:{params.get('errorText')}"
                    )
            if set(asked) <= set(ended) or time.monotonic() > deadline:
                return {url: ended.get(rid, "pending") for rid, url in asked.items()}
            self.evaluate("1")  # reads the events that arrived meanwhile
            time.sleep(0.1)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise AssertionError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed
