"""Running a study's stage-1 fits in parallel: batches of records handed to worker processes.

:func:`inference.analysis.analyze_study` cuts its records into batches and gives them to
:func:`run_batches` with an executor — by default :func:`local_executor`, a pool of worker
processes (joblib's loky: kept alive between calls, so the second study of a session starts
warm, and it never re-runs the caller's ``__main__``), or any :class:`concurrent.futures.Executor`,
e.g. the service's Ray executor that spreads them over a cluster. Workers find the traced
samplers in the shared cache (:mod:`inference.sampler_store`), so a new worker compiles nothing
that another process already compiled.

Processes rather than threads: about 40 % of a fit is Python under the GIL (least squares,
ArviZ, xarray); two threads gave 1.38× on two cores where processes give close to 2×.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait

from inference.errors import FitCancelled

#: Idle worker processes exit after this long (s); a later study starts new ones.
IDLE_TIMEOUT_S = 600
#: Batches per worker: small enough for progress and load balance, large enough to be cheap.
BATCHES_PER_WORKER = 6


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def local_executor(workers: int) -> Executor:
    """A pool of ``workers`` processes, reused by later calls (idle ones exit after 10 min)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, timeout=IDLE_TIMEOUT_S)


def batches(items: Sequence, workers: int) -> list[list]:
    """``items`` in order, cut into about :data:`BATCHES_PER_WORKER` batches per worker."""
    size = max(1, math.ceil(len(items) / (BATCHES_PER_WORKER * max(1, workers))))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_batches(
    fn: Callable,
    work: Sequence[list],
    *args,
    executor: Executor | None,
    on_done: Callable[[int, object], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    poll_s: float = 0.2,
) -> list:
    """``[fn(batch, *args) for batch in work]``, in that order, run by ``executor``.

    Parameters
    ----------
    fn : a module-level function (it is pickled to the workers).
    work : the batches.
    executor : where to run them; None runs them here, one after the other. An executor may
        offer ``wait(fs, timeout, return_when)`` (like :func:`concurrent.futures.wait`) to
        block its own way; the Ray executor does, so that a waiting task lends its CPU.
    on_done : called in this process with (batch index, result) as each batch finishes.
    should_stop : polled while waiting; when it returns True, batches not started are
        cancelled, running ones are asked to stop (``Future.cancel``) and
        :class:`FitCancelled` is raised.
    """
    results: list = [None] * len(work)
    if executor is None:
        for i, batch in enumerate(work):
            _check(should_stop)
            results[i] = fn(batch, *args)
            if on_done is not None:
                on_done(i, results[i])
        return results
    futures: dict[Future, int] = {
        executor.submit(fn, batch, *args): i for i, batch in enumerate(work)
    }
    pending = set(futures)
    wait_for = getattr(executor, "wait", wait)
    try:
        while pending:
            done, pending = wait_for(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for future in done:
                i = futures[future]
                results[i] = future.result()
                if on_done is not None:
                    on_done(i, results[i])
            _check(should_stop)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return results


def _check(should_stop) -> None:
    if should_stop is not None and should_stop():
        raise FitCancelled("analysis cancelled before it finished; no result was written")
