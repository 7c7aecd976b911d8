"""A batch on a Ray cluster through Ray Data: the units are read as a dataset (one block each), `map_batches` runs
them in a fixed pool of actors that load the models once each, and the results stream back to this process,
which stitches and writes them exactly as local mode does. Ray is imported here only, when asked for.

Files are opened by path on the worker nodes: on a cluster of several machines they must be reachable at the
same absolute path everywhere (shared storage), and affect-sdk must be installed on every node.
"""
from __future__ import annotations

import logging
import pickle
import warnings
from typing import Any, Callable

from affect_sdk.batch.plan import Unit
from affect_sdk.batch.work import UnitResult, analyze_unit
from affect_sdk.errors import AffectError, InputError
from affect_sdk.predict import PredictOptions


class AnalyzeUnits:
    """The Ray Data UDF (one instance per actor): the models load in __init__, once per actor, not per unit."""

    def __init__(self, options: PredictOptions) -> None:
        from affect_sdk.predict import Predictor

        self.predictor = Predictor(options)
        self.predictor.face.detector  # noqa: B018 - load the face model and the detector now
        self.predictor.speech  # noqa: B018
        if options.fuse:
            self.predictor.voice  # noqa: B018

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = [analyze_unit(self.predictor, pickle.loads(unit), int(unit_id))
                   for unit_id, unit in zip(batch["unit_id"], batch["unit"])]
        return {"unit_id": np.asarray([r.unit_id for r in results], dtype=np.int64),
                "result": np.asarray([pickle.dumps(r) for r in results], dtype=object)}


def run_ray(units: list[Unit], options: PredictOptions, *, address: str, workers: int | None, retries: int,
            on_result: Callable[[UnitResult], Any]) -> None:
    """Analyse `units` on Ray with `workers` actors (default: one per CPU of the cluster); on_result is called in
    this process as each unit comes back. An actor that dies is restarted and its unit retried up to `retries`
    times; a unit still lost after that is reported as an error, and the other units go on."""
    ray = import_ray()
    started = connect(ray, address, workers)
    data_log = logging.getLogger("ray.data")
    log_level = data_log.level
    data_log.setLevel(logging.ERROR)  # its per-run INFO lines and the note that progress bars are off
    try:
        with warnings.catch_warnings():
            # Ray Data warns about its own deprecated settings as it runs, and about the remote args below, which
            # (2.60) have no named parameter yet: its default retries a task forever, and a file that kills its
            # worker every time would make a batch that never ends.
            warnings.simplefilter("ignore", DeprecationWarning)
            _run(ray.data, units, options, workers or max(1, int(ray.cluster_resources().get("CPU", 1))), retries,
                 on_result)
    finally:
        data_log.setLevel(log_level)
        if started:
            ray.shutdown()


def _run(data: Any, units: list[Unit], options: PredictOptions, size: int, retries: int,
         on_result: Callable[[UnitResult], Any]) -> None:
    context = data.DataContext.get_current()
    context.enable_progress_bars = False  # the CLI draws its own, per file
    context.max_errored_blocks = -1  # a unit lost for good is reported below, it must not stop the others
    items = [{"unit_id": i, "unit": pickle.dumps(unit)} for i, unit in enumerate(units)]
    results = (data.from_items(items, override_num_blocks=len(items))  # one unit per block: a lost actor loses
               .map_batches(AnalyzeUnits, fn_constructor_kwargs={"options": options}, batch_size=1,
                            # only the unit it held, which Ray then runs again on a restarted actor
                            compute=data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
                            num_cpus=1, max_restarts=-1, max_task_retries=retries))
    seen: set[int] = set()
    for row in results.iter_rows():
        result = pickle.loads(row["result"])
        seen.add(result.unit_id)
        on_result(result)
    for unit_id, unit in enumerate(units):
        if unit_id not in seen:
            on_result(UnitResult(unit_id, None, f"Ray lost the unit of {unit.file}: its worker died on each of "
                                 f"{retries + 1} attempts.", attempts=retries + 1))


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--ray needs Ray Data, which is not installed: pip install 'affect-sdk[ray]'.") from None
    return ray


def connect(ray: Any, address: str, workers: int | None) -> bool:
    """Join the cluster at `address` ("auto": the one `ray start` runs on this machine), or start a private one on
    this machine ("local"); True when this call started Ray (and so should shut it down). A Ray already
    initialised in this process is used as it is."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise AffectError(f"Cannot join the Ray cluster at {address!r} ({exc}); start one with `ray start --head`, "
                          f"or use --ray local for a Ray on this machine alone.") from None
    return True
