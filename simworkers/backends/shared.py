"""ngspice's shared library through PySpice, in a long-lived child process.

The child loads a task's circuit once, then for each design runs `alterparam` for every
parameter, `reset`, and the control script. The parent holds the wall-clock limit: a child that
does not answer in time, dies, or whose library says it cannot recover is killed and replaced on
the next request. ngspice state never lives in the caller's process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection

from simworkers.backends.base import Backend, RunOutput
from simworkers.deck import circuit_text, control_lines
from simworkers.task import Task
from simworkers.units import spice_number

LIBRARIES = ("/usr/lib/x86_64-linux-gnu/libngspice.so.0", "/usr/lib/aarch64-linux-gnu/libngspice.so.0")


def default_library() -> str:
    """NGSPICE_LIBRARY_PATH, else Debian's libngspice0 for this machine."""
    if os.environ.get("NGSPICE_LIBRARY_PATH"):
        return os.environ["NGSPICE_LIBRARY_PATH"]
    return next((p for p in LIBRARIES if os.path.exists(p)), LIBRARIES[0])


_START_TIMEOUT_S = 60.0


class SharedBackend(Backend):
    name = "shared"

    def __init__(self, timeout_s: float | None = None, library: str | None = None):
        super().__init__(timeout_s)
        self.library = library or default_library()
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._loaded: str | None = None  # the circuit the child holds, by task path and name
        self.restarts = 0
        # ngspice's models write files (b3v33check.log, bsim4v5.out) into the working directory
        self._scratch = tempfile.TemporaryDirectory(prefix="tlgrpo-ngspice-")

    def _start(self) -> None:
        # A fresh interpreter over a socket pair: no fork of the caller's threads (Ray, torch),
        # and no dependence on how the caller's main module is written.
        os.makedirs(self._scratch.name, exist_ok=True)  # again, if closed and used after
        parent_sock, child_sock = socket.socketpair()
        fd = child_sock.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "simworkers.backends.ngspice_child", str(fd), self.library, str(os.getpid())],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd=self._scratch.name,
            env={**os.environ, "PYTHONPATH": _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
        child_sock.close()
        parent = Connection(parent_sock.detach())
        self._conn = parent
        self._loaded = None
        if not parent.poll(_START_TIMEOUT_S):
            self._replace()
            raise RuntimeError("the ngspice child process did not start")
        ready = parent.recv()
        if ready.get("error"):
            self._replace()
            raise RuntimeError(f"ngspice shared library failed to load: {ready['error']}")

    def _call(self, request: dict, timeout_s: float) -> dict | None:
        """Send one request; None if the child did not answer in time (it is then killed)."""
        assert self._conn is not None
        self._conn.send(request)
        if not self._conn.poll(timeout_s):
            self._replace()
            return None
        return self._conn.recv()

    def _run(self, task: Task, params: dict[str, float], timeout_s: float) -> RunOutput:
        try:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    self._replace()
                self._start()
            key = f"{task.path}:{task.name}"
            lines: list[str] = []
            if self._loaded != key:
                circuit = circuit_text(task, params) + ".end\n"
                reply = self._call({"op": "load", "circuit": circuit}, timeout_s)
                if reply is None:
                    return RunOutput([], timed_out=True)
                lines += reply["lines"]
                if reply.get("failed"):
                    return RunOutput(lines)
                self._loaded = key
            alter = [f"alterparam {name}={spice_number(v)}" for name, v in params.items()]
            reply = self._call({"op": "sim", "commands": [*alter, "reset", *control_lines(task)]}, timeout_s)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            self._replace()
            return RunOutput([], crashed=f"ngspice process died ({type(exc).__name__})")
        if reply is None:
            return RunOutput([], timed_out=True)
        return RunOutput(lines + reply["lines"])

    def _after_failure(self) -> None:
        # An error during `reset` leaves ngspice with no deck ("No internal deck available"):
        # load the circuit afresh for the next design rather than trust what is left.
        self._loaded = None

    def _replace(self) -> None:
        if self._proc is not None:
            self.restarts += 1
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        self._loaded = None

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.poll() is None:
            try:
                self._conn.send(None)
                self._proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._replace()
        self.restarts = 0
        self._scratch.cleanup()


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
