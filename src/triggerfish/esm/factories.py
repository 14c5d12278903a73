"""How a mapping runner builds its parts: its I/O (consumer, worker pool, destination, invoker, setup check,
share consumer), its record filter and the function ARN its on-failure records name.

The defaults of :class:`Factories` build the real I/O; tests pass fakes (``tests/esm_fakes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from triggerfish.esm import stages
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import KafkaSource, SourceFactory
from triggerfish.esm.destinations import Destination, open_destination
from triggerfish.esm.drive import Invoke
from triggerfish.esm.event import EventBuilder
from triggerfish.esm.filter import compile_criteria
from triggerfish.esm.invoker import Invoker
from triggerfish.esm.setup import SetupCheck
from triggerfish.esm.share import ShareSource, ShareSourceFactory
from triggerfish.functions.runtime import FunctionRuntime

#: Builds the worker pool: (workers, thread name prefix).
PoolFactory = Callable[[int, str], Executor]
#: Opens the on-failure destination: (target, the source cluster's librdkafka config).
DestinationFactory = Callable[[str, Mapping[str, Any]], Destination]


class InvokerFactory(Protocol):
    def __call__(self, runtime: FunctionRuntime, function: str, builder: EventBuilder, *,
                 parse_response: bool) -> Invoke: ...


def thread_pool(workers: int, name: str) -> Executor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)


@dataclass(frozen=True)
class Factories:
    """How a runner builds its I/O; the defaults build the real ones."""

    check: SetupCheck = stages.check_mapping
    source: SourceFactory = KafkaSource
    pool: PoolFactory = thread_pool
    destination: DestinationFactory = open_destination
    invoker: InvokerFactory = Invoker
    share: ShareSourceFactory = ShareSource


def record_filter(mapping: MappingConfig) -> Callable[[bytes | None], bool] | None:
    """The mapping's FilterCriteria as a predicate on a record's value; None = keep everything."""
    if not mapping.filter_criteria:
        return None
    compiled = compile_criteria(mapping.filter_criteria)
    return None if compiled is None else compiled.matches


def function_arn(mapping: MappingConfig, runtime: FunctionRuntime) -> str:
    """The on-failure record's functionArn: the ARN given, the deployed function's, or a default."""
    name = mapping.function_name
    if name.startswith("arn:"):
        return name
    if mapping.function in runtime:
        return runtime.get(mapping.function).arn()
    return f"arn:aws:lambda:us-east-1:000000000000:function:{mapping.function}"
