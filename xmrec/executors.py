"""Executors: how a grid of :class:`~xmrec.runs.RunSpec` is trained into a :class:`~xmrec.runs.RunStore`.

Every executor trains each missing run with :func:`xmrec.runs.execute` and reads every result back
from the store, so metrics and histories do not depend on which executor (or worker) trained a run;
only the provenance says it (``executor``, ``worker``). Runs are independent tasks; a fine-tune
waits for its base. Datasets are prepared once, by the caller, before any worker starts.

- :class:`InProcess` (``inprocess``, also called ``local``): one run after another, here.
- :class:`Processes` (``processes``): a pool of spawned processes on this machine.
- :class:`Dask` (``dask``): Dask distributed. Without a scheduler address it starts a
  ``LocalCluster`` of ``workers`` processes (the default for more than one worker); with one
  (``tcp://host:8786``) it runs the grid on that cluster, whose workers must see the store and the
  data cache at the same paths (a shared filesystem). Slurm and PBS clusters come from
  ``dask-jobqueue`` (``SLURMCluster(...).scheduler_address``); that path is documented, not tested here.

Workers train with ``threads`` torch threads each (default 1: small rankers use several cores
better as several runs than as threads of one).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Sequence

from tqdm.auto import tqdm

from xmrec.runs import InMemoryData, RunRecord, RunSpec, RunStore, execute

__all__ = ["EXECUTORS", "Executor", "InProcess", "Processes", "Dask", "make_executor", "plan"]


def plan(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """The runs ``specs`` need, each once (by digest), every fine-tune's base added; bases first."""
    out: dict[str, RunSpec] = {}
    for spec in specs:
        base = spec.base()
        if base is not None:
            out.setdefault(base.digest(), base)
        out.setdefault(spec.digest(), spec)
    runs = list(out.values())
    return [s for s in runs if s.base() is None] + [s for s in runs if s.base() is not None]


def _task(spec: RunSpec, root: str, cache: str, executor: str, threads: int | None, command, after=None) -> str:
    """One run, trained in a worker (``after``: the base's task, which a fine-tune waits for)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    execute(spec, RunStore(root, data_cache=cache), executor=executor, command=command)
    return spec.digest()


class Executor:
    """Trains the missing runs of a grid (:meth:`run`); subclasses say how (:meth:`_train`)."""

    name = "executor"

    def __init__(self, workers: int = 1, threads: int | None = None):
        if workers < 1:
            raise ValueError(f"an executor needs at least 1 worker, got {workers}")
        self.workers, self.threads = workers, threads

    def run(self, specs: Sequence[RunSpec], store: RunStore, *, progress: bool = True, command=None) -> list[RunRecord]:
        """Train what ``store`` lacks of ``specs`` (and their bases), then read every run back, in order."""
        todo = [s for s in plan(specs) if not store.done(s)]
        for data in {json.dumps(s.data.key(), sort_keys=True): s.data for s in todo}.values():  # once, before workers
            data.load(store.data_cache, progress)
        if todo:
            self._train(todo, store, progress, command)
        trained = {s.digest() for s in todo}
        records = [store.load(s) for s in specs]
        for r in records:
            r.reused = r.spec.digest() not in trained
        return records

    def _train(self, todo: list[RunSpec], store: RunStore, progress: bool, command) -> None:
        raise NotImplementedError

    def _bar(self, todo, progress: bool):
        return tqdm(
            total=len(todo), desc=f"runs ({self.name}, {self.workers} worker(s))", unit="run", disable=not progress
        )

    def _refuse_in_memory(self, todo) -> None:
        if any(isinstance(s.data, InMemoryData) for s in todo):
            raise ValueError(f"executor {self.name!r} runs in other processes: a run on in-memory data cannot go there")


class InProcess(Executor):
    """One run after another in this process (``threads``: torch threads meanwhile, None: as set)."""

    name = "inprocess"

    def _train(self, todo, store, progress, command) -> None:
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with self._bar(todo, progress) as bar:
                for spec in todo:
                    bar.set_postfix_str(f"{spec.label} seed {spec.seed}")
                    execute(spec, store, progress=progress, executor=self.name, command=command)
                    bar.update()
        finally:
            torch.set_num_threads(before)


class Processes(Executor):
    """A pool of ``workers`` spawned processes on this machine; fine-tunes after every base."""

    name = "processes"

    def _train(self, todo, store, progress, command) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        self._refuse_in_memory(todo)
        args = (str(store.root), str(store.data_cache), self.name, self.threads or 1, command)
        context = multiprocessing.get_context("spawn")
        with self._bar(todo, progress) as bar, ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            for phase in ([s for s in todo if s.base() is None], [s for s in todo if s.base() is not None]):
                futures = {pool.submit(_task, spec, *args): spec for spec in phase}
                for future in as_completed(futures):
                    future.result()
                    bar.update()
                    bar.set_postfix_str(f"{futures[future].label} seed {futures[future].seed}")


class Dask(Executor):
    """Dask distributed: a ``LocalCluster`` of ``workers`` processes, or the cluster at ``scheduler``."""

    name = "dask"

    def __init__(self, workers: int = 2, threads: int | None = None, scheduler: str | None = None):
        super().__init__(workers, threads)
        self.scheduler = scheduler

    def _client(self):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError(
                "executor 'dask' needs Dask distributed: pip install 'xmrec[dask]' (or distributed)"
            ) from None
        if self.scheduler:
            return Client(self.scheduler, timeout="20s"), None
        # a scratch folder of its own: clusters of other processes purge a shared one's worker folders
        self._scratch = tempfile.TemporaryDirectory(prefix="xmrec-dask-")
        cluster = LocalCluster(
            n_workers=self.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=self._scratch.name,
        )
        return Client(cluster), cluster

    def _train(self, todo, store, progress, command) -> None:
        from distributed import as_completed

        self._refuse_in_memory(todo)
        client, cluster = self._client()
        args = (str(store.root), str(store.data_cache), self.name, self.threads or 1, command)
        try:
            futures: dict[str, object] = {}
            for spec in todo:
                base = spec.base()
                after = futures.get(base.digest()) if base is not None else None
                futures[spec.digest()] = client.submit(
                    _task, spec, *args, after, key=f"xmrec-{spec.name}-{uuid.uuid4().hex[:8]}", pure=False
                )
            with self._bar(todo, progress) as bar:
                for future in as_completed(list(futures.values())):
                    future.result()
                    bar.update()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
                self._scratch.cleanup()


EXECUTORS = {"inprocess": InProcess, "local": InProcess, "processes": Processes, "dask": Dask}


def make_executor(
    name: str | None = None, workers: int = 1, scheduler: str | None = None, threads: int | None = None
) -> Executor:
    """The executor called ``name``; without a name: Dask when a scheduler or more than one worker
    is asked for (a ``LocalCluster`` without an address), else in-process."""
    if workers < 1:
        raise ValueError(f"an executor needs at least 1 worker, got {workers}")
    if name is None:
        name = "dask" if scheduler or workers > 1 else "inprocess"
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    if scheduler and name != "dask":
        raise ValueError(f"a scheduler address ({scheduler}) needs executor 'dask', not {name!r}")
    if scheduler and workers != 1:
        raise ValueError(f"workers size a LocalCluster; the cluster at {scheduler} has its own (drop --workers)")
    if EXECUTORS[name] is InProcess and workers != 1:
        raise ValueError(f"executor {name!r} trains one run at a time: {workers} workers need 'processes' or 'dask'")
    if name == "dask":
        return Dask(workers, threads, scheduler)
    return EXECUTORS[name](workers, threads)
