#!/usr/bin/python3
"""Loads a static page in headless Chromium and checks it the way a user would see it.

Fails (exit 1) when the page logs anything to the console at error level, throws, blocks a load
(e.g. its Content Security Policy), or has an <img> that does not load and decode; and when a
CSS selector does not match the expected number of elements (--expect SELECTOR=N, repeatable).
Exit 2 when Chromium cannot be driven. Prints the counts and every problem found.

It talks to Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages ended by NUL on file descriptors 3 and 4), so it needs nothing beyond the standard
library and works without network or display. Usage:
  chromium_page_check.py [--chromium PATH] [--timeout S] PAGE.html --expect .result=3 ...
"""
import argparse
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

# Marks every image eager (lazy ones outside the viewport would never load) and waits for each
# to decode; a broken one rejects.
IMAGES_LOADED = """
Promise.all([...document.querySelectorAll('img')].map(img => {
  img.loading = 'eager';
  return img.decode().then(() => img.naturalWidth > 0, () => false)
    .then(ok => ({src: img.getAttribute('src'), ok}));
}))"""


class DevTools:
    """A browser-level DevTools session over Chromium's debugging pipe."""

    def __init__(self, chromium, deadline):
        self.deadline = deadline
        self.profile = tempfile.mkdtemp(prefix="clipxai-chromium-")
        command_read, self.command_write = os.pipe()
        self.answer_read, answer_write = os.pipe()

        def wire_pipes():  # runs in the child: Chromium reads fd 3 and writes fd 4
            for source, target in ((command_read, 3), (answer_write, 4)):
                if source == target:
                    os.set_inheritable(target, True)
                else:
                    os.dup2(source, target)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--user-data-dir=" + self.profile, "--remote-debugging-pipe", "about:blank"],
            close_fds=False, preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(command_read)
        os.close(answer_write)
        self.buffer = b""
        self.last_id = 0
        self.events = []

    def close(self):
        self.process.kill()
        self.process.wait()
        os.close(self.command_write)
        os.close(self.answer_read)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _next_message(self):
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.answer_read], [], [], left)
            if ready:
                chunk = os.read(self.answer_read, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium exited")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, predicate):
        while True:
            message = self._next_message()
            if "method" in message:
                self.events.append(message)
            if predicate(message):
                return message

    def call(self, method, params=None, session=None):
        self.last_id += 1
        request = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self.command_write, json.dumps(request).encode() + b"\0")
        request_id = self.last_id
        answer = self.wait_for(lambda message: message.get("id") == request_id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


def problems_in(events):
    """Readable descriptions of the console, exception and loading events that mean trouble."""
    problems = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append("uncaught exception: " + details.get("exception", {}).get(
                "description", details.get("text", "")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append("console error: " + json.dumps(params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            problems.append(f"console error ({entry.get('source')}): {entry.get('text')}")
        elif method == "Network.loadingFailed":
            problems.append("load failed: " + (params.get("errorText") or
                                               params.get("blockedReason", "blocked")))
    return problems


def check_page(chromium, page, expectations, timeout):
    devtools = DevTools(chromium, time.monotonic() + timeout)
    try:
        target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = devtools.call("Target.attachToTarget",
                                {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            devtools.call(domain + ".enable", session=session)
        devtools.call("Page.navigate", {"url": pathlib.Path(page).resolve().as_uri()}, session)
        devtools.wait_for(lambda message: message.get("method") == "Page.loadEventFired")
        images = devtools.call("Runtime.evaluate", {"expression": IMAGES_LOADED,
                                                    "awaitPromise": True,
                                                    "returnByValue": True}, session)
        counts = {}
        for selector in expectations:
            found = devtools.call("Runtime.evaluate", {
                "expression": f"document.querySelectorAll({json.dumps(selector)}).length",
                "returnByValue": True}, session)
            counts[selector] = found["result"]["value"]
        problems = problems_in(devtools.events)
    finally:
        devtools.close()
    problems += [f"image did not load: {image['src']}"
                 for image in images["result"]["value"] if not image["ok"]]
    problems += [f"{selector}: {counts[selector]} elements, expected {expected}"
                 for selector, expected in expectations.items() if counts[selector] != expected]
    return counts, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("--expect", action="append", default=[], metavar="SELECTOR=N")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    expectations = {}
    for expectation in args.expect:
        selector, _, count = expectation.rpartition("=")
        expectations[selector] = int(count)
    try:
        counts, problems = check_page(args.chromium, args.page, expectations, args.timeout)
    except (OSError, RuntimeError, TimeoutError) as error:
        print(f"chromium_page_check: {error}", file=sys.stderr)
        return 2
    print(f"{args.page}: " + ", ".join(f"{s} x{n}" for s, n in counts.items()))
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
