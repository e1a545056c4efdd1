"""Produce an iterator's items on a background thread, a bounded number ahead of the consumer."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator


def prefetch(items: Iterable, depth: int, name: str = "mbolake-prefetch") -> Iterator:
    """Iterate ``items`` on a producer thread, at most ``depth`` ahead of the consumer.

    Used where a native writer (delta-rs) pulls batches from a generator: decoding, Delta
    reads and kernels (numpy, numba, zstd, pyarrow: they release the GIL) overlap with the
    writer's Parquet encoding; memory stays bounded by ``depth`` items. delta-rs must also
    not be re-entered from the thread it pulls on, which a producer reading Delta would do.
    An exception of the producer is raised to the consumer; a consumer that stops early
    stops the producer.
    """
    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            ready.put(error)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
