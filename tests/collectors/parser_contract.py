"""The contract every vendor parser test module checks, shared.

A parser is called as ``parse(line, ctx)``; on any input it returns a document or raises
``ParseError`` with a reason, never another exception. The vendor modules keep their own inputs
(fixtures, seeds, truncation points, hypothesis strategies); this module holds the checks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from collectors.parsing import ParseError, SourceContext

Result = dict[str, Any] | str

# The bounded fuzz run the vendor modules share: 200 examples, no deadline, no example database.
FUZZ_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def read_line(path: Path) -> str:
    """A golden `.log` fixture: one raw line, without its trailing newline."""
    return path.read_text(encoding="utf-8").removesuffix("\n")


def garbage_bytes(seed: int, count: int = 50) -> Iterator[bytes]:
    """`count` random byte strings of 1..399 bytes, reproducible from `seed`."""
    rng = random.Random(seed)
    for _ in range(count):
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))


def garbage_messages(seed: int, count: int = 50) -> Iterator[str]:
    """Each of `garbage_bytes` decoded as latin-1, then as UTF-8 with replacement."""
    for raw in garbage_bytes(seed, count):
        yield raw.decode("latin-1")
        yield raw.decode("utf-8", "replace")


def assert_reason_or_original(result: Result, message: str) -> None:
    """A ParseError reason, or a document whose `event.original` is the input."""
    assert isinstance(result, str) or result["event"]["original"] == message


def assert_document_or_parse_error(result: Result, message: str) -> None:
    """The fuzz contract: a non-empty reason, or a JSON-clean document keeping the input."""
    if isinstance(result, str):
        assert result
        return
    assert result["event"]["original"] == message
    json.dumps(result, allow_nan=False)


def check_binary_garbage(parse_or_reason: Callable[[str], Result], seed: int) -> None:
    """Random bytes, decoded two ways: never an exception other than ParseError."""
    for message in garbage_messages(seed):
        assert_reason_or_original(parse_or_reason(message), message)


def golden_case_names(fixtures: Path) -> list[str]:
    """The `<case>` of every `fixtures/<case>.log`, sorted."""
    return sorted(path.name.removesuffix(".log") for path in fixtures.glob("*.log"))


def assert_golden_cases_exist(fixtures: Path, cases: list[str]) -> None:
    """At least three golden cases, each `.log` with its `.ecs.json`."""
    assert len(cases) >= 3
    for case in cases:
        assert (fixtures / f"{case}.ecs.json").is_file(), case


def load_golden(fixtures: Path, case: str) -> tuple[str, dict[str, Any]]:
    """One golden pair: the raw line and the expected ECS document."""
    message = read_line(fixtures / f"{case}.log")
    expected = json.loads((fixtures / f"{case}.ecs.json").read_text(encoding="utf-8"))
    return message, expected


def parse_or_reason(
    parse: Callable[..., dict[str, Any]], message: str, ctx: SourceContext, **kwargs: Any
) -> Result:
    """The document, or the ParseError reason; any other exception fails the test."""
    try:
        return parse(message, ctx, **kwargs)
    except ParseError as error:
        return str(error)
