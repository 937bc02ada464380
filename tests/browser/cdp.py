"""A headless Chromium driven through the Chrome DevTools Protocol over a pipe: no browser download, no
extra package.

Chromium's --remote-debugging-pipe reads commands on file descriptor 3 and writes answers and
events on 4, each a JSON object ended by a NUL byte. That is the whole transport: no WebSocket
client, no port on the network. Playwright's pip package was the other choice; it drives
Debian's Chromium too (executable_path), but it brings a Node.js driver of its own (about 40 MB)
and is tested against one Chromium revision, while this speaks the stable protocol domains
(Target, Page, Runtime, Network) that every Chromium has.

    with Chromium.start(profile_dir) as browser:
        page = browser.new_page()          # a target attached in flat mode, events recorded
        page.open(url)                     # waits for the load event
        page.evaluate("document.title")    # the value, by value
        page.screenshot(path)              # a PNG of the full page
        page.requests                      # every Network.requestWillBeSent since it opened
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# What running as root in a container needs, and everything that would phone home switched off.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--no-default-browser-check", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe")
TIMEOUT = 30.0


class ProtocolError(RuntimeError):
    pass


def executable() -> str | None:
    """Chromium's path ($SPYGLASS_CHROMIUM or Debian's), or None when it is not installed."""
    chosen = os.environ.get("SPYGLASS_CHROMIUM")
    for path in ((chosen,) if chosen else CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path
    return None


class Chromium:
    """One browser process and its pipe; commands by id, events kept per session."""

    def __init__(self, process: subprocess.Popen, commands, answers) -> None:
        self._process, self._commands, self._answers = process, commands, answers
        self._lock = threading.Condition()
        self._results: dict[int, dict] = {}
        self._events: list[dict] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    @classmethod
    @contextmanager
    def start(cls, profile: Path, *, path: str | None = None, window=(1280, 900)):
        path = path or executable()
        if path is None:
            raise FileNotFoundError("no Chromium (apt-get install chromium)")
        ours_read, theirs_write = os.pipe()
        theirs_read, ours_write = os.pipe()

        def onto_3_and_4() -> None:
            # dup first: a pipe end that already is 3 or 4 would keep its close-on-exec flag after dup2.
            read, write = os.dup(theirs_read), os.dup(theirs_write)
            os.dup2(read, 3)
            os.dup2(write, 4)

        args = [path, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", "about:blank"]
        log = open(profile.parent / f"{profile.name}.stderr", "wb")
        process = subprocess.Popen(args, preexec_fn=onto_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log)
        os.close(theirs_read)
        os.close(theirs_write)
        browser = cls(process, os.fdopen(ours_write, "wb"), os.fdopen(ours_read, "rb"))
        try:
            browser.call("Browser.getVersion")
            yield browser
        finally:
            browser.close()
            log.close()

    # -- the pipe ---------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self._answers.read1(65536) if hasattr(self._answers, "read1") else self._answers.read(1)
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._lock:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._results[message["id"]] = message
                    else:
                        self._events.append(message)
                self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = TIMEOUT) -> dict:
        with self._lock:
            self._next_id += 1
            number = self._next_id
        message = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._commands.write(json.dumps(message).encode() + b"\0")
        self._commands.flush()
        with self._lock:
            if not self._lock.wait_for(lambda: number in self._results or not self._reader.is_alive(), timeout):
                raise ProtocolError(f"{method}: no answer in {timeout} s")
            if number not in self._results:
                raise ProtocolError(f"{method}: the browser closed the pipe")
            answer = self._results.pop(number)
        if "error" in answer:
            raise ProtocolError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def events(self, session: str | None = None, method: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self._events if (session is None or e.get("sessionId") == session)
                    and (method is None or e["method"] == method)]

    def wait_for_event(self, session: str, method: str, *, after: int = 0, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [e for e in self._events[after:] if e.get("sessionId") == session and e["method"] == method]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise ProtocolError(f"no {method} in {timeout} s")
                self._lock.wait(left)

    def event_count(self) -> int:
        with self._lock:
            return len(self._events)

    # -- pages --------------------------------------------------------------------------

    def new_page(self) -> "Page":
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=session)
        return page

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (ProtocolError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._commands, self._answers):
            try:
                stream.close()
            except OSError:
                pass


class Page:
    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser, self.session, self.target = browser, session, target
        self._opened_at = 0

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, session=self.session)

    def before_load(self, source: str) -> None:
        """Script run in every document before its own scripts (it is not subject to the page's CSP)."""
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def open(self, url: str) -> float:
        """Navigate and wait for the load event; returns the seconds it took."""
        self._opened_at = self.browser.event_count()
        started = time.monotonic()
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise ProtocolError(f"navigate {url}: {answer['errorText']}")
        self.browser.wait_for_event(self.session, "Page.loadEventFired", after=self._opened_at)
        return time.monotonic() - started

    def evaluate(self, expression: str):
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise ProtocolError(f"evaluate {expression!r}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    @property
    def requests(self) -> list[dict]:
        """Every request the page made since the last open(): Network.requestWillBeSent params."""
        events = self.browser.events(self.session, "Network.requestWillBeSent")
        return [e["params"] for e in events]

    def console(self) -> list[dict]:
        return [e["params"] for e in self.browser.events(self.session)
                if e["method"] in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def print_pdf(self, path: Path) -> Path:
        data = self.call("Page.printToPDF", {"printBackground": False})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

