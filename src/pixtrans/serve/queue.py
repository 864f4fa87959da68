"""One worker thread per served model, fed by a bounded queue.

The HTTP side never runs a net: it puts a `Job` on the model's queue and awaits its future, so
the event loop keeps answering (/health, other models, the page) while a net runs. A full queue
refuses at once (`QueueFull` -> 503). The worker takes the oldest job and every job already
waiting that can share its batch (same `batch_key`, e.g. pix2pix eval mode at one image size),
up to `max_batch`, and runs them as one call: requests that arrive together are batched.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    pass


@dataclass
class Job:
    """One request: `payload` for the runner; jobs with equal, non-None `batch_key` may share a run."""

    payload: Any
    batch_key: Hashable | None = None
    future: Future = field(default_factory=Future)


# runner(payloads) -> one result per payload, in order (exceptions fail the whole batch)
Runner = Callable[[list[Any]], list[Any]]


class ModelQueue:
    def __init__(self, name: str, runner: Runner, *, maxsize: int = 16, max_batch: int = 8):
        self.name = name
        self.runner = runner
        self.max_batch = max(1, int(max_batch))
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, int(maxsize)))
        self._held: list[Job] = []  # taken from the queue but not batchable with the current run
        self.running = 0  # jobs in the batch being run now
        self.done = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._work, name=f"pixtrans-serve-{name}", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize() + len(self._held)

    def submit(self, payload: Any, batch_key: Hashable | None = None) -> Future:
        job = Job(payload, batch_key)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(
                f"model '{self.name}' has {self._queue.maxsize} requests waiting; try again shortly"
            ) from None
        return job.future

    def close(self, timeout: float = 5.0) -> None:
        # the sentinel waits for room: jobs already queued are still answered
        self._queue.put(None)
        self._thread.join(timeout)

    def _next(self, block: bool) -> Job | None:
        if self._held:
            return self._held.pop(0)
        return self._queue.get(block=block) if block else self._queue.get_nowait()

    def _work(self) -> None:
        while True:
            job = self._next(block=True)
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue  # its request gave up (timeout) before it started
            batch = [job]
            if job.batch_key is not None:
                # everything already waiting that fits this batch; the rest keeps its order
                kept: list[Job] = []
                while len(batch) < self.max_batch:
                    try:
                        other = self._next(block=False)
                    except queue.Empty:
                        break
                    if other is None:
                        kept.append(other)
                        break
                    if other.batch_key == job.batch_key:
                        if other.future.set_running_or_notify_cancel():
                            batch.append(other)
                    else:
                        kept.append(other)
                self._held = kept + self._held
                if None in self._held:  # closing: answer what is held, then stop
                    self._held.remove(None)
                    self._held.append(None)
            self.running = len(batch)
            try:
                results = self.runner([j.payload for j in batch])
                for j, result in zip(batch, results, strict=True):
                    j.future.set_result(result)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting requests
                for j in batch:
                    j.future.set_exception(e)
            finally:
                self.running = 0
                self.done += len(batch)
                self.batches += 1
