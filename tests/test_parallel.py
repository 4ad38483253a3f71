"""WorkerPool on local processes: failures end a map fast, name the task and leave no process behind (issue 21).

The fault scenarios run in a subprocess under a timeout, so a hang fails the test instead of hanging the run, and
each repeats a few times: the hangs they guard against were intermittent (3 of 7 runs, 2 of 4).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import parallel_tasks as tasks
import pytest

from dreamlab.parallel import CLOSE_TIMEOUT_S, TaskError, WorkerDiedError, WorkerPool
from dreamlab.runs import UserError

_SCRIPT = """
import sys
sys.path.append(sys.argv[1])
from parallel_tasks import run_scenario
run_scenario(sys.argv[2], int(sys.argv[3]), sys.argv[4])
"""

_DRIVER = """
import sys
sys.path.append(sys.argv[1])
from pathlib import Path
from dreamlab.parallel import WorkerPool
from parallel_tasks import report_pid_and_sleep
Path(sys.argv[2]).mkdir()
with WorkerPool(workers=2) as pool:
    pool.map(report_pid_and_sleep, range(2), shared=sys.argv[2])
"""


def scenario(name: str, repeats: int, tmp_path: Path, timeout: float) -> list[dict]:
    try:
        out = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(Path(__file__).parent), name, str(repeats), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"scenario {name!r} hung: no result after {timeout} s; output so far: {err.stdout!r}")
    finally:
        for pid_file in tmp_path.glob("*/*.pid"):  # never leave a sleeper behind, whatever happened
            if tasks.running(int(pid_file.stem)):
                os.kill(int(pid_file.stem), signal.SIGKILL)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == repeats
    return records


def assert_clean(records: list[dict], within: float) -> None:
    for record in records:
        assert record["seconds"] < within, record
        assert record["children"] == [], f"worker processes left after the pool closed: {record}"
        assert record["grandchildren"] == [], f"processes started by workers left running: {record}"


def test_an_exception_in_a_worker_is_raised_naming_the_task(tmp_path):
    records = scenario("raise", 5, tmp_path, timeout=120)
    for record in records:
        assert record["error"].startswith("TaskError: parallel_tasks.raise_on_five on item 5 (5) failed")
        assert "ValueError: bad item 5" in record["error"]
    assert_clean(records, within=15)


def test_a_worker_killing_itself_fails_the_map_at_once(tmp_path):
    records = scenario("kill_self", 5, tmp_path, timeout=120)
    for record in records:
        assert record["error"].startswith("WorkerDiedError: a worker process died while running")
        assert "parallel_tasks.kill_self_on_five on items [" in record["error"]
        assert "5" in record["error"].split("on items")[1].split("]")[0]
    assert_clean(records, within=15)


def test_a_worker_killed_from_outside_and_ctrl_c_leave_nothing_running(tmp_path):
    records = scenario("kill_outside", 2, tmp_path, timeout=90)
    for record in records:
        assert record["error"].startswith("WorkerDiedError"), record
        assert "report_pid_and_sleep" in record["error"]
    assert_clean(records, within=15)
    records = scenario("interrupt", 2, tmp_path, timeout=90)
    for record in records:
        assert record["error"].startswith("KeyboardInterrupt"), record
    assert_clean(records, within=10)


def test_closing_a_pool_whose_worker_cannot_exit_is_bounded(tmp_path):
    records = scenario("stuck", 1, tmp_path, timeout=60)
    assert records[0]["error"] is None
    assert records[0]["seconds"] >= CLOSE_TIMEOUT_S  # the worker really was stuck: close waited, then killed it
    assert_clean(records, within=CLOSE_TIMEOUT_S + 8)


@pytest.mark.parametrize("failure", ["raise", "kill"])
def test_a_failing_doom_worker_leaves_no_engine_behind(tmp_path, failure):
    # The case: workers with a ViZDoom engine each, one of which fails mid-map.
    records = scenario(f"doom_{failure}", 2, tmp_path, timeout=120)
    for record in records:
        expected = "TaskError: parallel_tasks.doom_raise on item 1 (1)" if failure == "raise" else "WorkerDiedError"
        assert record["error"].startswith(expected), record
    assert_clean(records, within=20)
    assert all(list(run.glob("*.pid")) for run in tmp_path.iterdir())  # an engine was running in each run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_driver_takes_its_workers_and_their_children_along(tmp_path, signum):
    """The driver gets no chance to close its pool: each worker sees itself re-parented and kills its group."""
    pid_dir = tmp_path / "pids"
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(Path(__file__).parent), str(pid_dir)])
    try:
        deadline = time.monotonic() + 60
        while len(list(pid_dir.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        sleepers = [int(p.stem) for p in pid_dir.glob("*.pid")]
        assert len(sleepers) == 2, "the workers never started their sleepers"
        driver.send_signal(signum)
        driver.wait(timeout=10)
        deadline = time.monotonic() + 5  # the workers look for a new parent once a second
        while any(tasks.running(p) for p in sleepers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(tasks.running(p) for p in sleepers)
    finally:
        driver.kill()
        for pid_file in pid_dir.glob("*.pid"):
            if tasks.running(int(pid_file.stem)):
                os.kill(int(pid_file.stem), signal.SIGKILL)


# --- in-process checks --------------------------------------------------------------------------------------------


def test_shared_input_is_passed_first_and_pickled_once_per_map():
    with WorkerPool(workers=0) as pool:
        assert pool.map(tasks.add_shared, range(4), shared={"offset": 10}) == [10, 11, 12, 13]
    tasks.PICKLES = 0
    with WorkerPool(workers=2) as pool:
        assert pool.map(tasks.add_counted, range(20), shared=tasks.CountsPickles(100)) == list(range(100, 120))
        assert tasks.PICKLES == 1
        # A new object each call: pickled again.
        assert pool.map(tasks.add_counted, range(3), shared=tasks.CountsPickles(7)) == [7, 8, 9]
        assert tasks.PICKLES == 2
        assert pool.map(tasks.square, range(10)) == [i * i for i in range(10)]


def test_errors_keep_their_kind_and_the_pool_recovers():
    with WorkerPool(workers=1) as pool:
        with pytest.raises(UserError, match=r"raise_user_error on item 0 \(-5\) failed: UserError: --max_steps"):
            pool.map(tasks.raise_user_error, [-5])
        with pytest.raises(TaskError, match=r"raise_unpicklable on item 0 \(3\) failed: RuntimeError: .*Unpick"):
            pool.map(tasks.raise_unpicklable, [3])
        assert pool.map(tasks.square, [1, 2, 3]) == [1, 4, 9]  # fresh workers after a failure
    with pytest.raises(RuntimeError, match="outside"):
        WorkerPool(workers=1).map(tasks.square, [1])


def test_worker_died_error_is_a_runtime_error():
    # Callers that caught the old RuntimeError keep working.
    assert issubclass(WorkerDiedError, RuntimeError) and issubclass(TaskError, RuntimeError)
