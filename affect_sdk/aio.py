"""`async for` over a blocking iterator (a Session): it runs in a worker thread, results cross over one by one."""
from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Iterable, TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(iterable: Iterable[T], *, max_ahead: int = 64) -> AsyncIterator[T]:
    """Yield the items of a blocking iterable without blocking the event loop. Leaving the loop early stops the
    worker at its next item (the iterable's own cleanup, e.g. Session.close, runs in the worker)."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue = asyncio.Queue(maxsize=max_ahead)
    stop = threading.Event()

    def put(item: object) -> None:
        asyncio.run_coroutine_threadsafe(items.put(item), loop).result()

    def work() -> None:
        iterator = iter(iterable)
        try:
            for item in iterator:
                put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the awaiting side, raised there
            put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if not loop.is_closed():
                put(_DONE)

    worker = threading.Thread(target=work, name="affect-async", daemon=True)
    worker.start()
    try:
        while True:
            item = await items.get()
            if item is _DONE:
                break
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # drain so the worker is never stuck on a full queue
            try:
                items.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.01)
        worker.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
