"""Per-browser-session state: the cancel flag of the run a session has going, and nothing else.

A flag lives only while its session's run does (`begin` ... `finish`), so the table holds at most the runs in flight,
not one entry per visitor ever seen. When a tab closes, gradio calls `end_session` (Blocks.unload): a run
still going for that tab is stopped at its next denoising step and its flag dropped, so an abandoned
4096-pixel job does not hold the device while other users wait in the queue.

Limitation: on ZeroGPU, spaces.GPU runs the handler in a forked worker process, which holds its own copy
of this table; Stop and tab-close then cannot reach a running job (it ends at its GPU duration).
"""

from __future__ import annotations

import threading

_flags: dict[str, threading.Event] = {}
_lock = threading.Lock()


def session_key(request) -> str:
    """gradio's session hash (one per browser tab or gradio_client.Client); "local" outside a server."""
    return getattr(request, "session_hash", None) or "local"


def begin(request) -> threading.Event:
    """A fresh cancel flag for the session's new run, registered for `stop` until `finish`."""
    key, flag = session_key(request), threading.Event()
    with _lock:
        _flags[key] = flag
    return flag


def finish(request, flag: threading.Event) -> None:
    """The run that owns `flag` ended (done, failed, stopped or closed by gradio): drop its flag."""
    with _lock:
        if _flags.get(session_key(request)) is flag:
            del _flags[session_key(request)]


def stop(request) -> bool:
    """Ask the session's run to stop at its next step; False when the session has no run."""
    with _lock:
        flag = _flags.get(session_key(request))
    if flag is not None:
        flag.set()
    return flag is not None


def end_session(request) -> None:
    """The tab closed: stop its run, forget its state."""
    stop(request)
    with _lock:
        _flags.pop(session_key(request), None)


def active_runs() -> int:
    """How many sessions have a run going (what the table holds)."""
    with _lock:
        return len(_flags)
