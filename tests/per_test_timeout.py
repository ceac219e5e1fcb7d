"""The per-test timeout, enforced so that a hanging test fails instead of hanging the run.

pytest-timeout still reads the settings (``timeout`` in pyproject.toml, ``-o timeout=N``,
``--timeout``, the ``timeout`` marker); this plugin takes over enforcing them through
pytest-timeout's own hooks, because both of its methods leave a hang unbounded:

- it cancels its timer as soon as a test fails (its ``pytest_exception_interact`` hook, meant
  for ``--pdb``), so a fixture teardown that hangs after a failed test runs with no timeout;
  this is how a failed streams test once left pytest in ``epoll_wait`` for 16 minutes;
- its alarm fires once: a teardown that hangs after the alarm failed the test is not bounded;
- the alarm's exception can land in an event loop callback or a background task, where the
  loop logs or keeps it and carries on waiting.

So the timeout runs in two stages over the test's whole protocol (setup, call, teardown), and
is not cancelled before that protocol ends. At the timeout, SIGALRM fails the test where it
stands (an async test is interrupted in the event loop's ``select``) and the session goes on. If
the protocol has still not ended ``grace_s`` later, a watchdog thread prints every thread's
stack, kills this process's children (servers and workers that tests started) and exits with
status 1: the run is lost, but it fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Generator
from types import FrameType
from typing import Any

import psutil
import pytest

_ARMED = pytest.StashKey["Deadline | None"]()


def grace_s(timeout_s: float) -> float:
    """How long a timed-out test may take to unwind before the process is ended."""
    return min(30.0, max(1.0, timeout_s / 4))


class Deadline:
    """One test's timeout: a failure raised in the test at ``timeout_s``, an exit after grace."""

    def __init__(self, item: pytest.Item, timeout_s: float) -> None:
        self._item = item
        self._timeout_s = timeout_s
        self._grace_s = grace_s(timeout_s)
        self._alarm = threading.current_thread() is threading.main_thread()
        self._watchdog = threading.Timer(timeout_s + self._grace_s, self._end_process)
        self._watchdog.name = f"timeout of {item.nodeid}"
        self._watchdog.daemon = True

    def arm(self) -> None:
        """Start both stages."""
        if self._alarm:  # signals reach the main thread only
            signal.signal(signal.SIGALRM, self._fail_test)
            signal.setitimer(signal.ITIMER_REAL, self._timeout_s)
        self._watchdog.start()

    def disarm(self) -> None:
        """Stop both stages; the test's protocol is over."""
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        self._watchdog.cancel()

    def _fail_test(self, signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        try:
            waiting = _task_stacks(asyncio.get_running_loop())
        except RuntimeError:  # not inside an event loop
            waiting = ""
        pytest.fail(
            f"Timeout: {self._item.nodeid} ran past {self._timeout_s:g}s (setup, call and "
            f"teardown together){waiting}"
        )

    def _end_process(self) -> None:
        config = self._item.config
        capture = config.pluginmanager.getplugin("capturemanager")
        try:
            if capture is not None:
                capture.suspend_global_capture(in_=True)
            terminal = config.get_terminal_writer()
            terminal.sep("+", "Timeout")
            terminal.line(
                f"{self._item.nodeid} is still running {self._grace_s:g}s after its timeout of "
                f"{self._timeout_s:g}s: ending the test run. Stacks of every thread:"
            )
            for thread_id, frame in sys._current_frames().items():
                if thread_id != threading.get_ident():
                    terminal.sep("~", _thread_name(thread_id))
                    terminal.write("".join(traceback.format_stack(frame)))
                    terminal.write(_task_stacks(_loop_in(frame)))
            terminal.sep("+", "Timeout")
            terminal.flush()
            _kill_children()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)


def _task_stacks(loop: asyncio.AbstractEventLoop | None) -> str:
    """Where each of ``loop``'s tasks waits: a thread's stack only shows the loop's select."""
    if loop is None:
        return ""
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        out.write("\n")
        task.print_stack(file=out)
    return out.getvalue()


def _loop_in(frame: FrameType | None) -> asyncio.AbstractEventLoop | None:
    """The event loop running in a thread whose innermost frame is ``frame``, if any."""
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, asyncio.AbstractEventLoop) and owner.is_running():
            return owner
        frame = frame.f_back
    return None


def _thread_name(thread_id: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == thread_id:
            return f"thread {thread.name}"
    return f"thread {thread_id}"


def _kill_children() -> None:
    # A child left running would keep the CI step's output pipe open, and the step waiting.
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # already gone
            child.kill()


def _disarm(config: pytest.Config) -> None:
    deadline = config.stash.get(_ARMED, None)
    if deadline is not None:
        deadline.disarm()
        config.stash[_ARMED] = None


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool:
    """Arm this test's deadline in place of pytest-timeout's timer."""
    _disarm(item.config)
    deadline = Deadline(item, float(settings.timeout))
    item.config.stash[_ARMED] = deadline
    deadline.arm()
    return True


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool:
    """Keep the deadline: pytest-timeout also asks when a test fails, before its teardown."""
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Disarm the deadline once setup, call and teardown are all over."""
    try:
        return (yield)
    finally:
        _disarm(item.config)


def pytest_report_header(config: pytest.Config) -> str:
    """Say how the timeout is enforced (pytest-timeout's header names its own method)."""
    return (
        "timeout enforced by tests/per_test_timeout.py: fails the test at the timeout, ends the "
        "run if it is still going after the grace period"
    )


def pytest_enter_pdb(config: pytest.Config) -> None:
    """Nobody is timed out while sitting in the debugger."""
    _disarm(config)


def pytest_exception_interact(node: pytest.Item | pytest.Collector) -> None:
    """Post-mortem ``--pdb`` is a debugger session too."""
    if node.config.getoption("usepdb", False):
        _disarm(node.config)
