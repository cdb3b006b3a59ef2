"""Where the units of work run, and the one loop that hands their events and outcomes to the main process.

Every place is a :class:`concurrent.futures.Executor` plus the channel its workers send events to:

* ``jobs == 1``: :class:`InlineExecutor`, in this process (a ``run_fn`` need not be picklable); events go
  straight to the dispatcher.
* ``jobs > 1``: :class:`~concurrent.futures.ProcessPoolExecutor` (spawn, one fresh process per unit of work);
  events through a ``multiprocessing.Manager().Queue()``.
* ``ray_address``: :class:`RayExecutor` (Ray tasks, their ``ObjectRef.future()``); events through a
  ``ray.util.queue.Queue``.

:func:`execute` submits every unit of work and, until all are done, hands the events to the
:class:`Dispatcher` and each unit's returned outcomes (or its worker's crash) too.
"""

import contextlib
import multiprocessing
import queue as queue_module
import traceback
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait

from recbole_tmcdr.benchmark.worker import run_group

POLL_SECONDS = 0.25


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process, and returns its finished future."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - kept in the future, as a worker's error would be
            future.set_exception(error)
        return future


def import_ray():
    try:
        import ray
    except ImportError:
        raise SystemExit('--ray-address needs Ray, an optional dependency: pip install ray '
                         '(or pip install "recbole-tmcdr[ray]").') from None
    return ray


class RayExecutor(Executor):
    """Each call a Ray task (``num_cpus=cpus_per_task``, no retry). On a multi-node cluster the output and cache
    directories must be on a shared file system (runs write their logs and the embedding cache there) and the
    plugin installed on every node."""

    def __init__(self, ray, cpus_per_task):
        self.ray, self.cpus_per_task = ray, cpus_per_task
        self.remote_functions, self.refs = {}, []

    def submit(self, fn, /, *args, **kwargs):
        if fn not in self.remote_functions:
            self.remote_functions[fn] = self.ray.remote(num_cpus=self.cpus_per_task, max_retries=0)(fn)
        ref = self.remote_functions[fn].remote(*args, **kwargs)
        self.refs.append(ref)
        return ref.future()

    def shutdown(self, wait=True, *, cancel_futures=False):
        if cancel_futures:
            for ref in self.refs:
                with contextlib.suppress(Exception):
                    self.ray.cancel(ref, force=True)


@contextlib.contextmanager
def open_executor(jobs, ray_address=None, cpus_per_task=1):
    """``(executor, channel)``: the channel is the queue the workers put events in, None in this process."""
    if ray_address:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            # 'local' starts a cluster of our own: address=None would attach to whichever cluster
            # RAY_ADDRESS or /tmp/ray (writable by every user) names
            ray.init(address='local' if ray_address in ('local', 'new') else ray_address, log_to_driver=False,
                     include_dashboard=False)
        try:
            from ray.util.queue import Queue
            yield RayExecutor(ray, cpus_per_task), Queue()
        finally:
            if started_here:
                ray.shutdown()
    elif jobs == 1:
        yield InlineExecutor(), None
    else:
        # a fresh process per unit of work (max_tasks_per_child=1): RecBole's global state (logging, seeds,
        # threads) never leaks from one run to the next
        context = multiprocessing.get_context('spawn')
        with context.Manager() as manager:
            yield (ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1),
                   manager.Queue())


class Dispatcher:
    """Main-process side of the events: outcomes to ``on_done`` (once per run), the rest to the display."""

    def __init__(self, tasks, display, on_done):
        self.tasks = {task['run_id']: task for task in tasks}
        self.display, self.on_done, self.handled = display, on_done, set()

    def __call__(self, event):
        kind = event.get('event')
        if kind == 'record':
            self.outcome(event['run_id'], event['record'], None, None)
        elif kind == 'error':
            self.outcome(event['run_id'], None, event['error'], event.get('traceback'))
        else:
            self.display.event(event)
        self.tick()

    def tick(self):
        self.display.tick()

    def outcome(self, run_id, record, error, trace):
        if run_id in self.handled or run_id not in self.tasks:
            return
        self.on_done(self.tasks[run_id], record, error, trace)
        self.handled.add(run_id)

    def group_finished(self, group, future):
        """After a unit of work: outcomes whose event was lost, and the runs of a worker that crashed."""
        try:
            outcomes, error, trace = future.result(), None, None
        except Exception as crash:  # noqa: BLE001 - e.g. BrokenProcessPool (worker killed), a Ray task error
            outcomes = []
            error, trace = f'{type(crash).__name__}: {crash}', ''.join(traceback.format_exception(crash))
        for run_id, record, run_error, run_trace in outcomes:
            self.outcome(run_id, record, run_error, run_trace)
        for task in group:
            self.outcome(task['run_id'], None, error or 'the worker ended without a result', trace)


def drain(channel, dispatch):
    while channel is not None:
        try:
            event = channel.get_nowait()
        except (queue_module.Empty, EOFError, OSError):
            return
        except Exception as error:  # noqa: BLE001 - ray.util.queue.Empty is not queue.Empty
            if type(error).__name__ == 'Empty':
                return
            raise
        dispatch(event)


def execute(groups, run_fn, executor, channel, dispatch):
    """Run every unit of work (a list of tasks) with ``run_group(group, channel or dispatch, run_fn)``; the
    events and outcomes go to ``dispatch`` as they come. An interruption cancels what has not finished."""
    try:
        futures = {executor.submit(run_group, group, channel if channel is not None else dispatch, run_fn): group
                   for group in groups}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            drain(channel, dispatch)
            for future in done:
                dispatch.group_finished(futures[future], future)
            dispatch.tick()
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
