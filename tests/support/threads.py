"""Threads whose failures surface in the test: each exception is re-raised in the main thread."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

BARRIER_TIMEOUT_SECONDS = 60


def run_at_once(count: int, action) -> list:
    """Run ``action(n)`` in ``count`` threads released together; return the results in order.

    An exception in any thread (an assertion, say) is raised here, with its own message.
    """
    barrier = threading.Barrier(count)

    def released(n: int):
        barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
        return action(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(released, n) for n in range(count)]
    return [future.result() for future in futures]


class Background:
    """``action(n)`` running in ``count`` threads until ``join``, which re-raises their errors."""

    def __init__(self, count: int, action):
        self._pool = ThreadPoolExecutor(max_workers=count)
        self._futures: list[Future] = [self._pool.submit(action, n) for n in range(count)]

    def join(self) -> list:
        """Wait for every thread; return their results or raise the first error."""
        self._pool.shutdown(wait=True)
        return [future.result() for future in self._futures]
