"""Per-browser-session state: the cancel flag of the run a session has going, and nothing else.

A flag lives only while its session's run does (`begin` ... `finish`), so the table holds at most the runs in flight,
not one entry per visitor ever seen. When a tab closes, gradio calls `end_session` (Blocks.unload): a run
still going for that tab is stopped at its next denoising step and its flag dropped, so an abandoned
4096-pixel job does not hold the device while other users wait in the queue.

A job waiting in gradio's queue has not begun, so it has no flag yet: each queued job leaves a ticket when
gradio accepts it (`note_queued`, the event's validator, which gradio runs when it queues the job, outside
the queue), and Stop sets the tickets of the session's waiting jobs too; a job that begins with its ticket
set stops before its first step.

Limitation: on ZeroGPU, spaces.GPU runs the handler in a forked worker process, which holds its own copy
of this table; Stop and tab-close then cannot reach a running job (it ends at its GPU duration).
"""

from __future__ import annotations

import threading

import gradio as gr

from selfcascade.errors import Cancelled

_flags: dict[str, threading.Event] = {}
_tickets: dict[str, list[threading.Event]] = {}  # per session, the cancel flags of its queued jobs, oldest first
_lock = threading.Lock()
MAX_TICKETS = 64  # per session: gradio's queue holds fewer (SELFCASCADE_QUEUE_SIZE)


def session_key(request) -> str:
    """gradio's session hash (one per browser tab or gradio_client.Client); "local" outside a server."""
    return getattr(request, "session_hash", None) or "local"


def note_queued(request: gr.Request, *inputs) -> list:
    """gradio is queueing a job of this session (called as the event's validator, which judges nothing: every
    input is valid, the handler itself checks them): leave the ticket its run picks up in `begin`, so that
    Stop can reach the job while it waits. gradio hands the request to a positional parameter annotated
    gr.Request (it inserts it there), the inputs to the rest."""
    key = session_key(request)
    with _lock:
        tickets = _tickets.setdefault(key, [])
        tickets.append(threading.Event())
        del tickets[:-MAX_TICKETS]
    return [gr.validate(True, "")] * len(inputs)


def begin(request) -> threading.Event:
    """The cancel flag of the session's new run (its queue ticket, set if Stop came while it waited),
    registered for `stop` until `finish`."""
    key = session_key(request)
    with _lock:
        tickets = _tickets.get(key)
        flag = tickets.pop(0) if tickets else threading.Event()
        if tickets == []:
            del _tickets[key]
        _flags[key] = flag
    return flag


def raise_if_stopped(flag: threading.Event) -> None:
    """Cancelled when Stop came while the job waited in the queue: it ends before loading anything."""
    if flag.is_set():
        raise Cancelled


def finish(request, flag: threading.Event) -> None:
    """The run that owns `flag` ended (done, failed, stopped or closed by gradio): drop its flag."""
    with _lock:
        if _flags.get(session_key(request)) is flag:
            del _flags[session_key(request)]


def stop(request) -> bool:
    """Ask the session's run to stop at its next step, and its queued jobs not to start; False when the
    session has neither."""
    key = session_key(request)
    with _lock:
        flags = [flag for flag in (_flags.get(key), *_tickets.get(key, ())) if flag is not None]
    for flag in flags:
        flag.set()
    return bool(flags)


def end_session(request) -> None:
    """The tab closed: stop its run and its queued jobs, forget its state."""
    stop(request)
    with _lock:
        _flags.pop(session_key(request), None)
        _tickets.pop(session_key(request), None)


def active_runs() -> int:
    """How many sessions have a run going (what the table holds)."""
    with _lock:
        return len(_flags)
