"""Priority task scheduler: bounded max-heap, worker pool, retries, dead letters.

Semantics (design §2, row 4):

* Priorities Critical 100, High 75, Normal 50, Low 25, Background 1; higher
  runs first, FIFO within a priority (a submission sequence number breaks ties).
* The queue is bounded (queued + waiting-to-retry tasks); :meth:`Scheduler.submit`
  raises :class:`QueueFull` beyond it (the service maps it to RESOURCE_EXHAUSTED).
* ``concurrency`` worker threads run tasks, so at most that many run at once.
* Each attempt gets a :class:`~chimera.execution.cancel.CancelToken` whose
  deadline is the task's timeout; the sandbox enforces it.
* A failed attempt that ``classify`` calls retryable is retried after
  ``base * factor**n`` seconds (capped), up to ``max_retries`` times (the
  policy's, or the task's own from :meth:`Scheduler.submit`), then the task is
  dead-lettered; non-retryable failures end as FAILED.
* Cancelling a queued task ends it at once; cancelling a running task trips
  its token (the sandbox stops the guest at the next epoch tick).
* Every task ends with exactly one :class:`CompletionRecord`, delivered to
  ``on_complete`` and to :meth:`TaskHandle.wait`; that is what KPIs are built from.

``clock`` is injectable; retry delays are measured on it, and
:meth:`Scheduler.wakeup` makes workers re-read it, so tests can step a fake
clock instead of sleeping.
"""

from __future__ import annotations

import collections
import enum
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chimera.execution.cancel import CancelToken

_log = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Queue priorities (larger runs first)."""

    CRITICAL = 100
    HIGH = 75
    NORMAL = 50
    LOW = 25
    BACKGROUND = 1


class QueueFull(Exception):
    """The bounded queue is full; the caller should back off."""


class DuplicateTask(ValueError):
    """A task id that is still queued or running was submitted again."""


class SchedulerClosed(RuntimeError):
    """Submit after shutdown."""


class Verdict(enum.Enum):
    """How an attempt's value is judged."""

    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    FAIL = "FAIL"


class TaskState(enum.Enum):
    """Lifecycle of a task; the last four are terminal."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n (0-based) waits ``min(cap, base * factor**n)``."""

    max_retries: int = 3
    base_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.factor < 1 or self.max_delay_s < 0:
            raise ValueError(f"invalid retry policy {self}")

    def delay(self, retry_index: int) -> float:
        """Seconds before retry number ``retry_index`` (0 = first retry)."""
        return float(min(self.max_delay_s, self.base_delay_s * self.factor**retry_index))


@dataclass(frozen=True)
class Attempt:
    """What an executor receives for one try of a task."""

    task_id: str
    payload: Any
    priority: int
    attempt: int
    dispatch_seq: int
    cancel: CancelToken


@dataclass(frozen=True)
class CompletionRecord:
    """The single terminal record of a task (input to KPI reports)."""

    task_id: str
    priority: int
    state: TaskState
    attempts: int
    value: Any
    error: str
    submitted_at: float
    started_at: float | None
    finished_at: float
    retry_delays: tuple[float, ...] = ()
    payload: Any = None
    attempt_started_at: float | None = None  # the last attempt's start


@dataclass(frozen=True)
class TaskSnapshot:
    """A task's state at one moment, for status queries (times on the scheduler clock).

    ``started_at`` is the first attempt's start, ``attempt_started_at`` the
    latest one's; ``ready_at`` is when a RETRY_WAIT task may run again.
    """

    task_id: str
    state: TaskState
    priority: int
    attempts: int
    submitted_at: float
    started_at: float | None
    attempt_started_at: float | None
    ready_at: float | None
    last_error: str
    finished_at: float | None
    payload: Any = None
    last_value: Any = None  # what the last finished attempt returned


@dataclass
class _Task:
    task_id: str
    payload: Any
    priority: int
    seq: int
    timeout_s: float | None
    submitted_at: float
    state: TaskState = TaskState.QUEUED
    attempts: int = 0
    started_at: float | None = None
    ready_at: float = 0.0
    cancel: CancelToken = field(default_factory=CancelToken)
    cancel_requested: bool = False
    last_error: str = ""
    last_value: Any = None
    retry_delays: list[float] = field(default_factory=list)
    max_retries: int | None = None
    attempt_started_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    record: CompletionRecord | None = None


class TaskHandle:
    """Lets a submitter wait for a task's completion record."""

    def __init__(self, task: _Task) -> None:
        self._task = task

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._task.task_id

    def wait(self, timeout: float | None = None) -> CompletionRecord:
        """Blocks until the task ends; raises TimeoutError after ``timeout`` seconds."""
        if not self._task.done.wait(timeout):
            raise TimeoutError(f"task {self._task.task_id} still running")
        assert self._task.record is not None
        return self._task.record

    def done(self) -> bool:
        """True once the task has a completion record."""
        return self._task.done.is_set()


def default_classify(value: Any) -> Verdict:
    """Success when ``value.ok`` is true; otherwise retry."""
    return Verdict.SUCCESS if getattr(value, "ok", False) else Verdict.RETRY


class Scheduler:
    """Runs submitted tasks through ``executor`` by priority with a worker pool."""

    def __init__(
        self,
        executor: Callable[[Attempt], Any],
        *,
        concurrency: int = 4,
        max_queue: int = 10_000,
        retry: RetryPolicy = RetryPolicy(),
        default_timeout_s: float | None = None,
        classify: Callable[[Any], Verdict] = default_classify,
        on_complete: Callable[[CompletionRecord], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_idle_wait_s: float = 0.5,
        retain_finished: int = 10_000,
        max_dead_letters: int = 10_000,
        dead_letter_failed: bool = False,
        autostart: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if retain_finished < 0 or max_dead_letters < 1:
            raise ValueError("retain_finished must be >= 0 and max_dead_letters >= 1")
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self._executor = executor
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.retry = retry
        self.default_timeout_s = default_timeout_s
        self._classify = classify
        self._on_complete = on_complete
        self._clock = clock
        self._max_idle_wait = max_idle_wait_s
        self._cond = threading.Condition()
        self._ready: list[tuple[int, int, str]] = []  # (-priority, seq, id)
        self._delayed: list[tuple[float, int, str]] = []  # (ready_at, seq, id)
        self._tasks: dict[str, _Task] = {}
        # Bounded memory for a long-running service: the newest finished tasks
        # stay queryable by id, and the dead-letter list keeps its newest entries.
        self._retain_finished = retain_finished
        self._finished: collections.deque[_Task] = collections.deque()
        self._dead: collections.deque[CompletionRecord] = collections.deque(maxlen=max_dead_letters)
        # The service dead-letters a deterministic failure too (a retry would only repeat it).
        self._dead_states = (TaskState.DEAD_LETTERED,) + ((TaskState.FAILED,) if dead_letter_failed else ())
        self._seq = itertools.count()
        self._dispatch = itertools.count()
        self._waiting = 0  # QUEUED + RETRY_WAIT
        self._running = 0
        self.max_running = 0
        self._closed = False
        self._workers: list[threading.Thread] = []
        if autostart:
            self.start()

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Starts the worker threads (idempotent)."""
        with self._cond:
            if self._workers or self._closed:
                return
            self._workers = [
                threading.Thread(target=self._work, name=f"chimera-exec-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
        for t in self._workers:
            t.start()

    def shutdown(self, *, cancel_pending: bool = True, timeout: float | None = None) -> None:
        """Stops accepting tasks; cancels waiting ones (each gets its record) and joins workers.

        Running tasks have their tokens tripped when ``cancel_pending`` is set;
        otherwise workers first drain the queue. Either way no new retries are
        scheduled: a failure after shutdown ends the task as CANCELLED.
        """
        ended: list[_Task] = []
        with self._cond:
            self._closed = True
            if cancel_pending:
                for task in self._tasks.values():
                    if task.state in (TaskState.QUEUED, TaskState.RETRY_WAIT):
                        ended.append(task)
                    elif task.state is TaskState.RUNNING:
                        task.cancel_requested = True
                        task.cancel.cancel("scheduler shutdown")
                for task in ended:
                    self._finish_locked(task, TaskState.CANCELLED, "scheduler shutdown")
                self._ready.clear()
                self._delayed.clear()
            self._cond.notify_all()
        for task in ended:
            self._deliver(task)
        for t in self._workers:
            t.join(timeout)

    def wakeup(self) -> None:
        """Makes idle workers re-check the clock (for tests that step a fake clock)."""
        with self._cond:
            self._cond.notify_all()

    # -- API ------------------------------------------------------------

    def submit(
        self,
        task_id: str,
        payload: Any = None,
        *,
        priority: int = Priority.NORMAL,
        timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> TaskHandle:
        """Queues a task; raises QueueFull, DuplicateTask, SchedulerClosed or ValueError.

        ``max_retries`` overrides the retry policy's for this task.
        """
        prio = int(priority)
        if not 1 <= prio <= 100:
            raise ValueError(f"priority must be in 1..=100, got {prio}")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("task_id must be a non-empty string")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries is not None and (isinstance(max_retries, bool) or max_retries < 0):
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        with self._cond:
            if self._closed:
                raise SchedulerClosed("scheduler is shut down")
            old = self._tasks.get(task_id)
            if old is not None and not old.done.is_set():
                raise DuplicateTask(f"task {task_id!r} is already queued or running")
            if self._waiting >= self.max_queue:
                raise QueueFull(f"queue holds {self._waiting} tasks (limit {self.max_queue})")
            seq = next(self._seq)
            task = _Task(
                task_id,
                payload,
                prio,
                seq,
                timeout_s if timeout_s is not None else self.default_timeout_s,
                self._clock(),
                max_retries=max_retries,
            )
            self._tasks[task_id] = task
            self._waiting += 1
            heapq.heappush(self._ready, (-prio, seq, task_id))
            self._cond.notify()
        return TaskHandle(task)

    def cancel(self, task_id: str, reason: str = "cancelled by request") -> bool:
        """Cancels a waiting or running task; False if unknown or already finished."""
        with self._cond:
            task = self._tasks.get(task_id)
            if task is None or task.done.is_set():
                return False
            if task.state is TaskState.RUNNING:
                task.cancel_requested = True
                task.cancel.cancel(reason)
                return True
            self._finish_locked(task, TaskState.CANCELLED, reason)
        self._deliver(task)
        return True

    def state(self, task_id: str) -> TaskState | None:
        """Current state of a task, or None if unknown."""
        with self._cond:
            task = self._tasks.get(task_id)
            return task.state if task is not None else None

    def snapshot(self, task_id: str) -> TaskSnapshot | None:
        """A consistent view of a task, or None if unknown (or no longer retained)."""
        with self._cond:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return TaskSnapshot(
                task_id=task.task_id,
                state=task.state,
                priority=task.priority,
                attempts=task.attempts,
                submitted_at=task.submitted_at,
                started_at=task.started_at,
                attempt_started_at=task.attempt_started_at,
                ready_at=task.ready_at if task.state is TaskState.RETRY_WAIT else None,
                last_error=task.record.error if task.record is not None else task.last_error,
                finished_at=task.record.finished_at if task.record is not None else None,
                payload=task.payload,
                last_value=task.last_value,
            )

    def handle(self, task_id: str) -> TaskHandle | None:
        """A handle to wait for a known task, or None if unknown (or no longer retained)."""
        with self._cond:
            task = self._tasks.get(task_id)
            return TaskHandle(task) if task is not None else None

    def dead_letters(self) -> list[CompletionRecord]:
        """Dead-lettered tasks (and FAILED ones with ``dead_letter_failed``), oldest first."""
        with self._cond:
            return list(self._dead)

    def stats(self) -> dict[str, int]:
        """Queue depth, running count, high-water mark of concurrency, dead letters."""
        with self._cond:
            return {
                "waiting": self._waiting,
                "running": self._running,
                "max_running": self.max_running,
                "dead_letters": len(self._dead),
            }

    def record(self, task_id: str) -> CompletionRecord | None:
        """The completion record of a recently finished task, if still retained."""
        with self._cond:
            task = self._tasks.get(task_id)
            return task.record if task is not None else None

    # -- internals --------------------------------------------------------

    def _finish_locked(self, task: _Task, state: TaskState, error: str) -> None:
        if task.state in (TaskState.QUEUED, TaskState.RETRY_WAIT):
            self._waiting -= 1
        task.state = state
        task.record = CompletionRecord(
            task_id=task.task_id,
            priority=task.priority,
            state=state,
            attempts=task.attempts,
            value=task.last_value,
            error=error,
            submitted_at=task.submitted_at,
            started_at=task.started_at,
            finished_at=self._clock(),
            retry_delays=tuple(task.retry_delays),
            payload=task.payload,
            attempt_started_at=task.attempt_started_at,
        )
        if state in self._dead_states:
            self._dead.append(task.record)
        self._finished.append(task)
        while len(self._finished) > self._retain_finished:
            old = self._finished.popleft()
            if self._tasks.get(old.task_id) is old:
                del self._tasks[old.task_id]

    def _deliver(self, task: _Task) -> None:
        task.done.set()
        if self._on_complete is not None and task.record is not None:
            try:
                self._on_complete(task.record)
            except Exception:  # a KPI sink must never kill a worker
                _log.exception("on_complete failed for task %s", task.task_id)

    def _promote_due_locked(self) -> float | None:
        """Moves due retries to the ready heap; returns seconds to the next one."""
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, seq, tid = heapq.heappop(self._delayed)
            task = self._tasks.get(tid)
            if task is not None and task.seq == seq and task.state is TaskState.RETRY_WAIT:
                task.state = TaskState.QUEUED
                heapq.heappush(self._ready, (-task.priority, task.seq, tid))
        return self._delayed[0][0] - now if self._delayed else None

    def _next_locked(self) -> _Task | None:
        while True:
            if self._closed and self._waiting == 0:
                return None
            wait = self._promote_due_locked()
            while self._ready:
                _, seq, tid = heapq.heappop(self._ready)
                task = self._tasks.get(tid)
                # Entries of cancelled or replaced tasks are skipped (lazy deletion).
                if task is not None and task.seq == seq and task.state is TaskState.QUEUED:
                    return task
            timeout = self._max_idle_wait
            if wait is not None:
                timeout = min(max(wait, 0.0), self._max_idle_wait)
            self._cond.wait(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                task = self._next_locked()
                if task is None:
                    return
                self._waiting -= 1
                self._running += 1
                self.max_running = max(self.max_running, self._running)
                task.state = TaskState.RUNNING
                task.attempts += 1
                now = self._clock()
                if task.started_at is None:
                    task.started_at = now
                task.attempt_started_at = now
                deadline = time.monotonic() + task.timeout_s if task.timeout_s else None
                token = CancelToken(deadline)
                if task.cancel_requested:
                    token.cancel(task.cancel.reason)
                task.cancel = token
                attempt = Attempt(
                    task.task_id,
                    task.payload,
                    task.priority,
                    task.attempts,
                    next(self._dispatch),
                    token,
                )
            value: Any = None
            try:
                value = self._executor(attempt)
                verdict = self._classify(value)
                error = "" if verdict is Verdict.SUCCESS else _describe(value)
            except Exception as exc:  # executor bugs are retryable failures
                verdict, error = Verdict.RETRY, f"{type(exc).__name__}: {exc}"
            self._after_attempt(task, verdict, value, error)

    def _after_attempt(self, task: _Task, verdict: Verdict, value: Any, error: str) -> None:
        with self._cond:
            self._running -= 1
            task.last_value = value
            task.last_error = error
            finished = True
            if task.cancel_requested:
                self._finish_locked(task, TaskState.CANCELLED, task.cancel.reason or error)
            elif verdict is Verdict.SUCCESS:
                self._finish_locked(task, TaskState.SUCCEEDED, "")
            elif verdict is Verdict.FAIL:
                self._finish_locked(task, TaskState.FAILED, error)
            elif task.attempts > (
                task.max_retries if task.max_retries is not None else self.retry.max_retries
            ):
                self._finish_locked(
                    task,
                    TaskState.DEAD_LETTERED,
                    f"gave up after {task.attempts} attempts: {error}",
                )
            elif self._closed:
                self._finish_locked(task, TaskState.CANCELLED, f"scheduler shutdown ({error})")
            else:
                delay = self.retry.delay(task.attempts - 1)
                task.retry_delays.append(delay)
                task.state = TaskState.RETRY_WAIT
                task.ready_at = self._clock() + delay
                self._waiting += 1
                heapq.heappush(self._delayed, (task.ready_at, task.seq, task.task_id))
                finished = False
            self._cond.notify_all()
        if finished:
            self._deliver(task)


def _describe(value: Any) -> str:
    status = getattr(value, "status", None)
    message = getattr(value, "message", "")
    if status is not None:
        name = getattr(status, "value", status)
        return f"{name}: {message}" if message else str(name)
    return repr(value)[:200]


__all__ = [
    "Attempt",
    "CompletionRecord",
    "DuplicateTask",
    "Priority",
    "QueueFull",
    "RetryPolicy",
    "Scheduler",
    "SchedulerClosed",
    "TaskHandle",
    "TaskSnapshot",
    "TaskState",
    "Verdict",
    "default_classify",
]
