"""Headless Chromium for tests, driven over the DevTools protocol on a pipe.

``chromium --remote-debugging-pipe`` reads protocol commands from its fd 3 and writes
replies and events to its fd 4, one JSON object each, ended by a NUL byte: no debugging
port, no websocket library.  Chromium runs with the flags that keep it off the network
(the machine has none) and a fresh profile, inside the test's network namespace, where the
page under test is served.

    with Chromium(argv_prefix, profile_dir) as browser:
        page = browser.open("http://127.0.0.1:9100/")
        page.wait_until("document.querySelectorAll('tr').length > 3")
        page.screenshot(path)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", "--disable-dev-shm-usage", "--window-size=1400,1000",
         "--remote-debugging-pipe")
# Far from anything Python opened: the child moves the pipe ends there first, so that
# putting them on 3 and 4 cannot overwrite one with the other.  (close_fds stays off: it
# would close 3 and 4 after the move; Python's own descriptors are not inherited anyway.)
_SPARE_FD = 200


class BrowserError(RuntimeError):
    pass


def available() -> str | None:
    if CHROMIUM is None:
        return "needs Debian's chromium package (the Makefile's set-up installs it)"
    return None


class Page:
    """One tab, attached in flat mode (commands carry its session id)."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.command(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        reply = self.command("Runtime.evaluate", expression=expression, returnByValue=True,
                             awaitPromise=True)
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate until the value is truthy; BrowserError on timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"not true after {timeout:g} s: {expression} (last: {value!r})")

    def screenshot(self, path: Path) -> Path:
        reply = self.command("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(reply["data"]))
        return path


class Chromium:
    """A headless Chromium process and its protocol pipe."""

    def __init__(self, argv_prefix: Sequence[str], profile: Path) -> None:
        assert CHROMIUM is not None
        self._to_browser_r, self._to_browser_w = os.pipe()
        self._from_browser_r, self._from_browser_w = os.pipe()
        argv = [*argv_prefix, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     close_fds=False, preexec_fn=self._child_fds)
        os.close(self._to_browser_r)
        os.close(self._from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _child_fds(self) -> None:
        """In the child, before exec: the browser's command pipe on 3, its replies on 4."""
        os.dup2(self._to_browser_r, _SPARE_FD)
        os.dup2(self._from_browser_w, _SPARE_FD + 1)
        os.dup2(_SPARE_FD, 3)
        os.dup2(_SPARE_FD + 1, 4)
        os.close(_SPARE_FD)
        os.close(_SPARE_FD + 1)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser_r, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def command(self, method: str, params: dict[str, Any] | None = None, *,
                session: str | None = None, timeout: float = 30) -> dict[str, Any]:
        """Send one protocol command and wait for its reply's ``result``."""
        with self._cond:
            self._next_id += 1
            number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while number not in self._replies:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    raise BrowserError(f"{method}: no reply (browser "
                                       f"{'gone' if self._closed else 'silent'})")
                self._cond.wait(remaining)
            reply = self._replies.pop(number)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def open(self, url: str) -> Page:
        """A new tab showing ``url``, once its document has loaded."""
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.command("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.command("Page.navigate", url=url)
        page.wait_until(f"location.href === {json.dumps(url)} && "
                        "document.readyState === 'complete'")
        return page

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrowserError):  # it may go before it replies
                self.command("Browser.close", timeout=10)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        os.close(self._to_browser_w)
        self._reader.join(10)
        os.close(self._from_browser_r)
