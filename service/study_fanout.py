"""A study job's fits fanned out as Ray tasks over the whole cluster.

The study job's own task (one per attempt, see :mod:`service.dispatcher`) runs
:func:`inference.analysis.analyze_study` with a :class:`RayExecutor`: the stage-1 fits go out in
batches of records, and the two Arrhenius layers side by side, each batch a Ray task of one CPU
that any node may take (``ray start --address …`` adds nodes). The data travel with the tasks,
so a node needs no access to the job's files, and every worker process loads the traced
samplers from its machine's cache (:mod:`inference.sampler_store`).

- The job's task waits with ``ray.wait``, which lends its CPU to the batches meanwhile.
- Progress: each finished batch reports its records to the job (``done``/``total`` per stage).
- Cancel: the job's ``should_stop`` is polled while batches run; then every outstanding batch
  is cancelled with ``ray.cancel`` (a KeyboardInterrupt in its task), and a force-kill of the
  job's task by the dispatcher takes its child tasks with it (Ray cancels recursively).
- Ray's retries are off, as for every task of ours; a lost batch fails the attempt, which the
  dispatcher retries as a whole. The result is verified as for any study job.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Executor, Future, InvalidStateError
from concurrent.futures import wait as futures_wait

import ray

log = logging.getLogger(__name__)


def _call(fn, args, kwargs):
    """The body of one fan-out task: ``fn(*args, **kwargs)`` and the node it ran on."""
    return ray.get_runtime_context().get_node_id(), fn(*args, **kwargs)


class _TaskFuture(Future):
    """A future settled by its Ray task; ``cancel()`` cancels the task."""

    def __init__(self, ref: ray.ObjectRef, nodes: Counter):
        super().__init__()
        self.ref, self._nodes = ref, nodes
        ref.future().add_done_callback(self._settle)

    def _settle(self, inner: Future) -> None:
        with contextlib.suppress(InvalidStateError):  # cancelled meanwhile: nobody waits
            try:
                node, value = inner.result()
            except Exception as exc:  # the task failed or was cancelled
                self.set_exception(exc)
                return
            self._nodes[node] += 1
            self.set_result(value)

    def cancel(self) -> bool:
        if not self.done():
            ray.cancel(self.ref)
        return super().cancel()


class RayExecutor(Executor):
    """Runs ``submit``-ted functions as Ray tasks of ``num_cpus`` CPUs each.

    Tasks are spread over the nodes (Ray's ``SPREAD`` strategy) rather than packed onto the
    first one, so a study uses the whole cluster. ``nodes`` counts finished tasks per node id.
    """

    def __init__(self, num_cpus: float = 1):
        self._remote = ray.remote(num_cpus=num_cpus, max_retries=0, scheduling_strategy="SPREAD")(
            _call
        )
        self._futures: list[_TaskFuture] = []
        self.nodes: Counter = Counter()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = _TaskFuture(self._remote.remote(fn, args, kwargs), self.nodes)
        self._futures.append(future)
        return future

    def wait(self, fs, timeout=None, return_when=FIRST_COMPLETED):
        """:func:`concurrent.futures.wait`, blocking in ``ray.wait`` (which lends this task's
        CPU to the tasks it waits for)."""
        pending = [f for f in fs if not f.done()]
        ready = (
            pending
            and ray.wait(
                [f.ref for f in pending], num_returns=1, timeout=timeout, fetch_local=False
            )[0]
        )
        # A ready task's future is settled by a callback a moment later.
        return futures_wait(fs, timeout=1.0 if ready else 0, return_when=return_when)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for future in self._futures:
                future.cancel()


def cluster_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to (1 when it is not)."""
    if not ray.is_initialized():
        return 1
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def analyze(study, **options):
    """``analyze_study(study, **options)`` with its fits spread over the Ray cluster.

    Outside Ray (the job body called directly) everything runs in this process.
    """
    from inference.analysis import analyze_study

    if not ray.is_initialized():
        return analyze_study(study, workers=1, **options)
    executor = RayExecutor()
    try:
        return analyze_study(study, executor=executor, workers=cluster_cpus(), **options)
    finally:
        executor.shutdown(cancel_futures=True)
        if executor.nodes:
            spread = ", ".join(f"{node[:8]}: {n}" for node, n in sorted(executor.nodes.items()))
            log.info(
                "study fits ran on %d Ray node(s) (tasks per node: %s)", len(executor.nodes), spread
            )
