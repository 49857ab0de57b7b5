"""The server processes of ``embedlens serve``: one uvicorn server, or ``--workers N`` of
them forked on one listening socket.

With several, the run is read once, here, and the workers are forked from this process, so
they start at once and share its memory (the train matrix, the ids, the titles) instead of
each reading the run again, which is what uvicorn's own ``--workers`` does (it spawns fresh
interpreters): at the ML-25M shape two spawned workers took 4.8-5.6 s to answer, over the
5 s start-up budget, and held two copies of everything. Each worker then loads the methods
(and the precomputed answers) in its own background thread; no thread runs here before the
fork, which is what makes forking safe. Forking is offered on Linux only (macOS forbids
forking a process that has loaded its system frameworks; Windows cannot fork).

A worker that ends by itself (killed for memory, say) stops the others: the server is one
service, and whoever supervises it (systemd, a container runtime) restarts it whole.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
from typing import Any

from embedlens.core.errors import EmbedlensError

#: Seconds a stopping worker waits for requests in flight before closing them.
GRACEFUL_SECONDS = 5


class WorkerEnded(RuntimeError):
    """A server process ended without being asked to."""


def check_workers(workers: int) -> int:
    """``workers`` if this platform can run that many (above 1 needs Linux), else one
    clear error."""
    if not 1 <= workers <= 64:
        raise EmbedlensError(f"--workers must be 1..64, got {workers}.")
    if workers > 1 and not (hasattr(os, "fork") and sys.platform.startswith("linux")):
        raise EmbedlensError(f"--workers above 1 needs Linux (this is {sys.platform}); run "
                             "one server per port behind a proxy instead.")
    return workers


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, as uvicorn binds its own; one
    clear error if the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EmbedlensError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "choose another --port or --host.") from None
    sock.listen(2048)
    return sock


def _server(app: Any) -> Any:
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                         timeout_graceful_shutdown=GRACEFUL_SECONDS))


def serve(app: Any, sock: socket.socket, workers: int = 1) -> None:
    """Serve ``app`` on ``sock`` until interrupted: in this process, or from ``workers``
    forked processes (see the module's notes). Interrupted, it ends as uvicorn does, by the
    signal it got (SIGINT raises ``KeyboardInterrupt``)."""
    if check_workers(workers) == 1:
        _server(app).run(sockets=[sock])
        return
    # what is loaded now is shared with every worker page for page; kept out of their
    # collectors, a full collection neither copies those pages nor walks their objects
    gc.collect()
    gc.freeze()
    children: set[int] = set()
    signals: list[int] = []

    def stop(signum: int, _: Any = None) -> None:
        signals.append(signum)
        # the first signal asks the workers to finish their requests; a second insists
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if len(signals) == 1 else signal.SIGKILL)

    # before the first fork, so that no signal can end this process and leave workers
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    ended: list[tuple[int, int]] = []
    parent = os.getpid()
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                _work(app, sock, parent)  # never returns
            children.add(pid)
        sock.close()  # the workers hold it
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            children.discard(pid)
            if not signals:
                ended.append((pid, os.waitstatus_to_exitcode(status)))
                stop(signal.SIGTERM)
    finally:
        for pid in children:  # only when this process is failing: leave no worker behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if ended:
        pid, code = ended[0]
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise WorkerEnded(f"server process {pid} ended by itself ({how}); the others were "
                          "stopped")
    if signals:
        signal.raise_signal(signals[0])


def _work(app: Any, sock: socket.socket, parent: int) -> None:
    """A forked worker: one uvicorn server on ``sock``; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # uvicorn installs its own
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _end_with_parent()
        if os.getppid() != parent:  # it died before the kernel was told to say so
            raise SystemExit(0)
        _server(app).run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way of saying it could not start
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        print(f"embedlens serve worker {os.getpid()}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        code = 1
    finally:
        os._exit(code)


def _end_with_parent() -> None:
    """Have the kernel stop this worker if the process that forked it dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so no worker is left holding the port."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
