"""Task functions and fault scenarios for tests/test_parallel.py, in a module of their own so that the spawned workers
and the scenario subprocess import only this and dreamlab.parallel (no pytest, no torch): they start in a fraction of
a second even on a loaded machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from dreamlab.parallel import WorkerPool

# --- task functions (top level, so spawned workers can import them) ---------------------------------------------


def start_sleeper(pid_dir: str) -> None:
    """Start a long-lived child, like a game engine, and record its pid."""
    child = subprocess.Popen(["sleep", "120"])
    Path(pid_dir, f"{child.pid}.pid").touch()


def raise_on_five(pid_dir: str, item: int) -> int:
    start_sleeper(pid_dir)
    if item == 5:
        raise ValueError(f"bad item {item}")
    time.sleep(0.05)
    return item


def fork_sleeper(pid_dir: str) -> None:
    """Fork a child that sleeps: unlike an exec'd program it keeps every descriptor, the pool's pipes included."""
    pid = os.fork()
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    Path(pid_dir, f"{pid}.pid").touch()


def kill_self_on_five(pid_dir: str, item: int) -> int:
    fork_sleeper(pid_dir)
    if item == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return item


def report_pid_and_sleep(pid_dir: str, item: int) -> int:
    start_sleeper(pid_dir)
    Path(pid_dir, f"worker-{os.getpid()}").touch()
    time.sleep(120)
    return item


def doom_then_fail(pid_dir: str, item: int, kill: bool) -> int:
    """Play a few Doom steps (the engine is a child process, recorded), then item 1 raises or is killed."""
    from dreamlab.worldmodels.tasks import get_task

    env = get_task("doom").make_env(30)
    env.reset(seed=item)
    for child in descendants(os.getpid()):
        Path(pid_dir, f"{child}.pid").touch()
    if item == 1:
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("the game broke")
    time.sleep(1.0)
    env.close()
    return item


def doom_raise(pid_dir: str, item: int) -> int:
    return doom_then_fail(pid_dir, item, kill=False)


def doom_kill(pid_dir: str, item: int) -> int:
    return doom_then_fail(pid_dir, item, kill=True)


def leave_a_thread_running(pid_dir: str, item: int) -> int:
    """Finish, leaving a non-daemon thread behind: the worker cannot exit when asked, and must be killed."""
    start_sleeper(pid_dir)
    threading.Thread(target=time.sleep, args=(120,)).start()
    return item


def add_shared(shared: dict, item: int) -> int:
    return shared["offset"] + item


def raise_user_error(item: int) -> int:
    from dreamlab.runs import UserError

    raise UserError(f"--max_steps must be positive, got {item}")


class Unpicklable(Exception):
    def __init__(self, a: int, b: int):  # pickle calls Unpicklable(msg): this signature makes it fail
        super().__init__(f"{a} {b}")


def raise_unpicklable(item: int) -> int:
    raise Unpicklable(item, 2)


def square(item: int) -> int:
    return item * item


PICKLES = 0


class CountsPickles:
    """An object whose pickling the driver counts."""

    def __init__(self, offset: int):
        self.offset = offset

    def __reduce__(self):
        global PICKLES
        PICKLES += 1
        return CountsPickles, (self.offset,)


def add_counted(shared: CountsPickles, item: int) -> int:
    return shared.offset + item


# --- process bookkeeping ------------------------------------------------------------------------------------------


def running(pid: int) -> bool:
    # A killed process re-parented to a PID 1 that does not reap stays a zombie: dead, though it has a /proc entry.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def is_resource_tracker(pid: int) -> bool:
    # multiprocessing's own helper: one per driver, started by the first spawn, it exits with the driver.
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (psutil if installed, else /proc parent links), bar the resource tracker."""
    return [p for p in _descendants(pid) if running(p) and not is_resource_tracker(p)]


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        found, frontier = [], [pid]
        while frontier:
            children = [p for p, parent in parents.items() if parent == frontier[-1]]
            frontier.pop()
            found += children
            frontier += children
        return found


def leftovers(pid_dir: Path) -> list[int]:
    """Recorded grandchildren still running, given two seconds to die."""
    pids = [int(p.stem) for p in pid_dir.glob("*.pid")]
    deadline = time.monotonic() + 2.0
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if running(p)]


# --- fault scenarios, run in a subprocess ------------------------------------------------------------------------


def kill_worker_from_outside(pid_dir: Path) -> None:
    while not (found := list(pid_dir.glob("worker-*"))):
        time.sleep(0.05)
    os.kill(int(found[0].name.split("-")[1]), signal.SIGKILL)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_scenario(name: str, repeats: int, pid_root: str) -> None:
    """Run one failure ``repeats`` times; print one JSON line per run: error, seconds, what was left running."""
    for repeat in range(repeats):
        pid_dir = Path(pid_root, f"{name}-{repeat}")
        pid_dir.mkdir()
        fn = {
            "raise": raise_on_five,
            "kill_self": kill_self_on_five,
            "doom_raise": doom_raise,
            "doom_kill": doom_kill,
            "stuck": leave_a_thread_running,
        }.get(name, report_pid_and_sleep)
        if name == "kill_outside":
            threading.Thread(target=kill_worker_from_outside, args=(pid_dir,), daemon=True).start()
        if name == "interrupt":  # Ctrl-C in the driver while every worker is busy
            signal.signal(signal.SIGALRM, interrupt)
            signal.alarm(3)
        started = time.monotonic()
        error = None
        try:
            with WorkerPool(workers=2) as pool:
                pool.map(fn, range(8), shared=str(pid_dir))
        except (Exception, KeyboardInterrupt) as err:
            error = f"{type(err).__name__}: {err}"
        seconds = time.monotonic() - started
        record = {"error": error, "seconds": seconds, "children": descendants(os.getpid())}
        record["grandchildren"] = leftovers(pid_dir)
        print(json.dumps(record), flush=True)


# --- Ray cluster tasks (tests/test_ray_cluster.py): the nodes import this module from tests/ ----------------------


def score(x) -> float:
    return -float(sum(float(v) ** 2 for v in x))


def die_once(marker_dir: str, item: tuple) -> tuple:
    """Score a candidate; the worker evaluating candidate 2 kills itself the first time (a node or worker lost)."""
    index, x = item
    with open(Path(marker_dir, "evaluations"), "a") as log:
        log.write(f"{index}\n")
    if index == 2 and not Path(marker_dir, "killed").exists():
        Path(marker_dir, "killed").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return index, score(x)


def raise_and_count(marker_dir: str, item: int) -> int:
    with open(Path(marker_dir, "attempts"), "a") as log:
        log.write(f"{item}\n")
    raise ValueError(f"bad item {item}")


def shared_sum(shared, item: int) -> float:
    return float(shared.sum()) + item


def trial_returns(generation: int, x) -> list[float]:
    """Two deterministic 'episode returns' of a candidate (a sphere, shifted by the generation)."""
    return [score(x) + generation, score(x) - generation]


def evolve_sphere(pool: WorkerPool, run_dir: str, die_after: int = -1, generations: int = 5) -> dict:
    """evolve_controller on ``pool`` with a checkpoint in ``run_dir``; SIGKILLs this process once generation
    ``die_after`` has been checkpointed (as the next one starts), as a killed driver would."""
    import numpy as np

    from dreamlab.checkpoint import Checkpointer
    from dreamlab.cmaes import CMAES
    from dreamlab.worldmodels.training import evolve_controller

    def fitness(candidates, generation: int):
        if generation == die_after:
            print(f"killed after generation {generation}/{generations}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return np.asarray(pool.map(trial_returns, list(candidates), shared=generation))

    es = CMAES(np.full(6, 2.0), 0.5, popsize=6, seed=1)
    evolution = evolve_controller(es, fitness, generations=generations, checkpointer=Checkpointer(run_dir, {"seed": 1}))
    return {"mean": es.mean.tolist(), "scores": evolution.curve.column("mean_score")}


def evolve_sphere_main(argv: list[str]) -> None:
    """``python -c`` entry: connect to the Ray cluster at argv[0] and run :func:`evolve_sphere`."""
    with WorkerPool(2, argv[0]) as pool:
        print(json.dumps(evolve_sphere(pool, argv[1], int(argv[2]))), flush=True)
