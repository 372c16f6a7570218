"""Child processes that die with their parent, even when the parent is SIGKILLed.

``spawn(argv, **popen_kwargs)`` starts the child with ``PR_SET_PDEATHSIG`` (Linux),
from one long-lived thread: the signal fires when the *thread* that forked the child
ends, and a child may be (re)started from a short-lived thread (a broker restart in a
fault, a comeback). Used by the embedded broker and the shift simulator.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from typing import Any

_requests: queue.Queue[tuple[list[str], dict[str, Any], queue.Queue[Any]]] = queue.Queue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = threading.Thread(target=_spawn_loop, name="child-spawner", daemon=True)
            _spawner.start()
    answer: queue.Queue[Any] = queue.Queue()
    _requests.put((argv, kwargs, answer))
    result = answer.get()
    if isinstance(result, BaseException):
        raise result
    proc: subprocess.Popen[bytes] = result
    return proc


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl: nobody would stop us
            os._exit(1)


def _spawn_loop() -> None:
    parent = os.getpid()
    while True:
        argv, kwargs, answer = _requests.get()
        try:
            answer.put(
                subprocess.Popen(argv, preexec_fn=lambda: _die_with_parent(parent), **kwargs)
            )
        except BaseException as exc:  # handed to the caller
            answer.put(exc)
