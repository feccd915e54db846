"""The JavaScript hosts of the "web" and "node" runtimes: a headless Chromium running
onnxruntime-web (WASM) on a page served from a loopback HTTP server, and a Node.js worker
running onnxruntime-node, both answering the requests of rnnx/js/host.mjs.

One Chromium and one Node worker per Python process, started on first use and shared by every
session (a browser takes about a second to start; the tests share it); each session is a model
handle inside it. What each needs and is missing is one line saying how to install it.
"""

from __future__ import annotations

import atexit
import contextlib
import http.server
import json
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnnx.core.errors import InputError, RnnxError, first_line

JS_DIR = Path(__file__).resolve().parent.parent / "js"  # rnnx.mjs, host.mjs, the worker, pages
# onnxruntime-web's WASM-only build: the module, and the WASM it loads from beside itself
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# Debian's Chromium, headless, touching nothing outside this machine
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
NPM_HINT = (
    "install the npm packages with `make js` in an rnnx checkout "
    "(ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix js), or set RNNX_NODE_MODULES to a "
    "node_modules folder that has them"
)
TIMEOUT_S = 600.0  # one request (a long sequence in WASM takes seconds, not minutes)


def node_modules() -> Path:
    """Where onnxruntime-web and onnxruntime-node are: $RNNX_NODE_MODULES, else the checkout's
    js/node_modules (what `make js` installs)."""
    configured = os.environ.get("RNNX_NODE_MODULES")
    return Path(configured) if configured else JS_DIR.parent.parent / "js" / "node_modules"


def node_executable() -> str | None:
    return os.environ.get("RNNX_NODE") or shutil.which("node") or shutil.which("nodejs")


def chromium_executable() -> str | None:
    configured = os.environ.get("RNNX_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def ort_web_dist() -> Path:
    return node_modules() / "onnxruntime-web" / "dist"


def missing_node() -> str | None:
    """Why the node runtime cannot run here (one line saying what to install), or None."""
    if node_executable() is None:
        return "the node runtime needs Node.js: apt-get install nodejs npm (or set RNNX_NODE)"
    if not (node_modules() / "onnxruntime-node" / "package.json").is_file():
        return f"the node runtime needs the npm package onnxruntime-node: {NPM_HINT}"
    return None


def missing_web() -> str | None:
    """Why the web runtime cannot run here (one line saying what to install), or None."""
    import importlib.util

    if chromium_executable() is None:
        return "the web runtime needs Chromium: apt-get install chromium (or set RNNX_CHROMIUM)"
    if importlib.util.find_spec("playwright") is None:
        return "the web runtime drives Chromium with Playwright: pip install playwright"
    if not all((ort_web_dist() / name).is_file() for name in ORT_WEB_FILES):
        return f"the web runtime needs the npm package onnxruntime-web: {NPM_HINT}"
    return None


class Host:
    """A JavaScript host answering host.mjs requests. Releases are queued and sent with the
    next call to the same page (handles are numbered per page): they come from finalizers,
    which run wherever GC runs, even on the loopback server's thread while a call waits for it
    to serve a model, so they take no lock and drive no browser."""

    name = "js"

    def __init__(self) -> None:
        self._released: queue.SimpleQueue[tuple[tuple, str, int]] = queue.SimpleQueue()
        self._pending: dict[tuple, dict[str, list[int]]] = {}
        self._lock = threading.Lock()

    def call(self, request: Mapping[str, Any], **transport: Any) -> dict[str, Any]:
        with self._lock:
            while not self._released.empty():
                key, kind, handle = self._released.get()
                self._pending.setdefault(key, {}).setdefault(kind, []).append(handle)
            releases = self._pending.pop(tuple(sorted(transport.items())), None)
            if releases:
                self._send({"op": "release", **releases}, **transport)
            answer = self._send(request, **transport)
        if "error" in answer:
            kind = InputError if answer.get("kind") == "InputError" else RnnxError
            raise kind(f"{self.name}: {first_line(answer['error'])}")
        return answer

    def release(self, kind: str, handle: int, **transport: Any) -> None:
        """Let go of a model or stream (by the `transport` it was made with) at the next call."""
        self._released.put((tuple(sorted(transport.items())), kind, handle))

    def model_source(self, path: Path) -> str:
        """How the host names a model file: a path (Node), or a URL (the browser). Absolute:
        the host process is shared and keeps the working directory it started in."""
        return os.fspath(Path(path).resolve())

    def _send(self, request: Mapping[str, Any], **transport: Any) -> dict[str, Any]:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class NodeWorker(Host):
    """`node rnnx/js/node_worker.mjs`: JSON lines over its stdin and stdout."""

    name = "node"

    def __init__(self) -> None:
        super().__init__()
        missing = missing_node()
        if missing:
            raise RnnxError(missing)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr, kept open
        environment = {**os.environ, "RNNX_NODE_MODULES": os.fspath(node_modules())}
        self._process = subprocess.Popen(
            [str(node_executable()), os.fspath(JS_DIR / "node_worker.mjs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=environment,
            text=True, encoding="utf-8", bufsize=1,
        )  # fmt: skip
        self._next = 0
        ready = self._read()
        self.versions = ready.get("versions", {})

    def _send(self, request: Mapping[str, Any], **transport: Any) -> dict[str, Any]:
        self._next += 1
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps({**request, "id": self._next}) + "\n")
            self._process.stdin.flush()
        except OSError as error:
            raise self._died() from error
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise self._died()
        return json.loads(line)

    def _died(self) -> RnnxError:
        self._process.poll()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        cause = next((x for x in reversed(lines) if "Error" in x), lines[-1] if lines else "")
        return RnnxError(f"the node worker stopped (exit {self._process.returncode}): {cause}")

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


class Browser(Host):
    """Headless Chromium driven by Playwright (sync API: calls come from the thread that
    started it), one page per WASM thread count, the files served over loopback."""

    name = "web"

    def __init__(self) -> None:
        super().__init__()
        missing = missing_web()
        if missing:
            raise RnnxError(missing)
        from playwright.sync_api import sync_playwright

        self._thread = threading.get_ident()
        self._server = _Server()
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_executable(), args=list(CHROMIUM_FLAGS), headless=True
            )
        except Exception as error:  # Playwright's own Error type
            self._playwright.stop()
            self._server.close()
            raise RnnxError(f"cannot start Chromium: {first_line(error)}") from error
        self._pages: dict[int, Any] = {}
        self.versions = {"chromium": self._browser.version}

    def model_source(self, path: Path) -> str:
        return self._server.serve(path)

    def page(self, threads: int) -> Any:
        """The page whose onnxruntime-web runs `threads` WASM threads (0: its default)."""
        if threads not in self._pages:
            page = self.open(f"{self._server.url}/rnnx/runtime.html?threads={threads}")
            try:  # the page imports onnxruntime-web: seconds, unless a file fails to load
                ready = page.wait_for_function("() => window.rnnxReady", timeout=60_000)
            except Exception as error:  # Playwright's TimeoutError
                page.close()
                reason = first_line(error)
                raise RnnxError(f"web: onnxruntime-web did not start: {reason}") from error
            ready = ready.json_value()
            self.versions["onnxruntime-web"] = ready.get("onnxruntime", "")
            self._pages[threads] = page
        return self._pages[threads]

    def open(self, url: str) -> Any:
        """A new page of this browser at `url` (a Playwright Page; the caller closes it)."""
        page = self._browser.new_page()
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(url)
        return page

    def _send(self, request: Mapping[str, Any], threads: int = 0, **transport: Any) -> dict:
        if threading.get_ident() != self._thread:
            raise RnnxError("the web runtime runs on the thread that first opened it (Playwright)")
        try:
            return self.page(threads).evaluate("r => window.rnnxHost.handle(r)", dict(request))
        except Exception as error:  # Playwright's Error/TimeoutError: the page or browser died
            raise RnnxError(f"web: the browser page failed: {first_line(error)}") from error

    def alive(self) -> bool:
        return self._browser.is_connected()

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()
            self._server.close()


_SHARED: dict[str, Host] = {}
_SHARED_LOCK = threading.Lock()


def shared(kind: str) -> Host:
    """This process's Chromium ("web") or Node worker ("node"), started on first use."""
    with _SHARED_LOCK:
        host = _SHARED.get(kind)
        if host is None or not host.alive():
            host = _SHARED[kind] = Browser() if kind == "web" else NodeWorker()
        return host


@atexit.register
def close_shared() -> None:
    """Stop the shared browser and worker (at exit; tests call it to stop them sooner)."""
    with _SHARED_LOCK:
        while _SHARED:
            _, host = _SHARED.popitem()
            with contextlib.suppress(Exception):  # at exit, a host already gone is fine
                host.close()


# ---- the loopback server -----------------------------------------------------------------------

CONTENT_TYPES = {
    ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
    ".html": "text/html; charset=utf-8", ".json": "application/json",
}  # fmt: skip


class _Server:
    """Serves rnnx/js, onnxruntime-web's WASM build and the models registered, nothing else,
    on 127.0.0.1, with the cross-origin isolation headers WASM threads need."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {f"/ort/{n}": ort_web_dist() / n for n in ORT_WEB_FILES}
        for name in ("rnnx.mjs", "host.mjs", "runtime.html"):
            self.files[f"/rnnx/{name}"] = JS_DIR / name
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = files.get(self.path.split("?")[0])
                if path is None or not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                kind = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, path: Path) -> str:
        route = f"/models/{secrets.token_hex(8)}/{path.name}"
        self.files[route] = Path(path).resolve()
        return self.url + route

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
