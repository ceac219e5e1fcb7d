"""A hanging test fails within its timeout instead of hanging the run.

Each case runs pytest in a child process, with this suite's configuration and plugins, on a
small test file that hangs in one way, with a 3 s timeout; the child must end (bounded by a
generous outer wait of its own) with a non-zero status and say it timed out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
TIMEOUT_S = 3
OUTER_WAIT_S = 60
HANGING_TESTS = """
import asyncio
import os
import subprocess
from collections.abc import AsyncIterator

import pytest


async def test_hangs() -> None:
    await asyncio.Event().wait()


@pytest.fixture
async def teardown_hangs() -> AsyncIterator[None]:
    yield
    await asyncio.Event().wait()


async def test_teardown_hangs(teardown_hangs: None) -> None:
    pass


async def test_fails_then_teardown_hangs(teardown_hangs: None) -> None:
    raise AssertionError("the test's own failure")


async def test_waits_on_a_child_that_never_exits() -> None:
    child = await asyncio.create_subprocess_exec("sleep", "3600")
    try:
        await child.wait()
    finally:
        child.kill()
        await child.wait()


def test_waits_on_a_child_without_asyncio() -> None:
    child = subprocess.Popen(["sleep", "3600"])
    try:
        child.wait()
    finally:
        child.kill()
        child.wait()


@pytest.fixture
async def teardown_waits_on_a_child() -> AsyncIterator[None]:
    child = await asyncio.create_subprocess_exec("sleep", "3600")
    with open(os.environ["CHILD_PID_FILE"], "w") as pid_file:
        pid_file.write(str(child.pid))
    yield
    await child.wait()


async def test_hangs_and_its_teardown_waits_on_a_child(teardown_waits_on_a_child: None) -> None:
    await asyncio.Event().wait()
"""

# What the run says: the test is failed where it stands and the session goes on, or, when its
# teardown hangs again after that, the process prints the stacks and ends.
FAILED = "Failed: Timeout: test_hangs.py::{name} ran past 3s"
ENDED = "test_hangs.py::{name} is still running 1s after its timeout of 3s: ending the test run"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("test_hangs", FAILED),
        ("test_teardown_hangs", FAILED),
        ("test_fails_then_teardown_hangs", FAILED),
        ("test_waits_on_a_child_that_never_exits", FAILED),
        ("test_waits_on_a_child_without_asyncio", FAILED),
        ("test_hangs_and_its_teardown_waits_on_a_child", ENDED),
    ],
)
def test_a_hanging_test_ends_the_run_with_a_timeout(
    tmp_path: Path, repo_root: Path, name: str, says: str
) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGING_TESTS)
    pid_file = tmp_path / "child.pid"

    returncode, output = _pytest(tmp_path, repo_root, f"test_hangs.py::{name}", pid_file)

    assert returncode == 1, output
    assert says.format(name=name) in output, output
    if pid_file.exists():
        _assert_gone(int(pid_file.read_text()))


def _pytest(folder: Path, repo_root: Path, test: str, pid_file: Path) -> tuple[int, str]:
    """Run pytest on ``test`` as this suite does (its config, its conftest's plugins)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(repo_root / "pyproject.toml"),
            "--rootdir",
            str(folder),
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-o",
            f"timeout={TIMEOUT_S}",
            test,
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(repo_root), "CHILD_PID_FILE": str(pid_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that a run that hangs can be ended with all it started
    )
    try:
        output, _ = process.communicate(timeout=OUTER_WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"pytest still ran {OUTER_WAIT_S}s after a {TIMEOUT_S}s timeout:\n{output}")
    return process.returncode, output


def _assert_gone(pid: int) -> None:
    """The child is dead (a zombie waits only for its new parent to reap it)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
