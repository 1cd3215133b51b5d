"""Hunts: Sigma rules run over stored events, on demand (`socmon hunt`) and on a schedule.

A rule becomes one store query: each of its field-mapped variants
(`detections.sigma.mapping.variants`, one per log channel that can carry its log source) is
converted by pySigma's Elasticsearch Lucene backend (`dsl_lucene` output: a `query_string`
inside a bool query) and the variants are OR-ed, inside a time-range filter. Results are read
with a scroll, so nothing is silently truncated: a per-rule cap (`max_matches`) stops early
and says so in that rule's result. A rule the backend cannot convert, or that no log channel
carries, is reported with the reason, never skipped.

Every match becomes an alert document of the same shape as the streaming engine's
(`detections.alerts.make_alert`), with the same id (`alert_id(rule id, event id)`), so a rerun,
or a hunt over events the streaming engine has already seen, does not duplicate an alert
(the alerts index is written with op_type=create: 409 = already raised).

Time windows are half-open, `[since, until)`, so consecutive slices neither overlap nor leave
gaps. On-demand hunts filter on event time (`@timestamp`); scheduled hunts on
`event.ingested`, the time the shipper stored the event. A watermark on event time would
miss every event that arrives late (a collector that was offline, a spool drained after an
outage, an imported EVTX file): its `@timestamp` lies before a watermark that has already
moved on. `event.ingested` only grows; the scheduler stays `lag` seconds behind the clock so
that a batch stamped just before a run but not yet searchable (shipper retries, the
Elasticsearch refresh interval) is still covered by the next window.

Sigma semantics in Lucene (:class:`SigmaLuceneBackend`, checked on osmem-server 0.1.6, which
parses `query_string` as Elasticsearch does). pySigma's Lucene backend as is gets three things
wrong on socmon's keyword fields, and its queries would silently miss events:

- case: Sigma compares strings case-insensitively, keyword terms are case-sensitive
  (`Image:*\\cmd.exe` misses `C:\\WINDOWS\\CMD.EXE`). Values with letters become regexps
  with one `[aA]` class per letter;
- regexps: Sigma's `|re` searches (Python `re.search`), a Lucene regexp must match the whole
  term and knows no `(?i)`; `/who.mi/` misses `cmd /c whoami`. They are rewritten (see
  :func:`python_regex_to_lucene`); what Lucene cannot express (lookarounds, `\\b`,
  back-references, `|re|m`) makes the rule unconvertible, with the reason;
- UserData: Windows events keep some data under `winlog.user_data.*` (WMI, AppLocker); the
  streaming matcher reads a `winlog.event_data.X` condition there when EventData lacks X,
  and so do the hunt queries.

A list of values of one field (IOC lists run to a thousand) becomes one alternation regexp
per 1,000 characters (Elasticsearch's `index.max_regex_length`) rather than a clause each.
osmem evaluates large alternations slowly (the regression run's 1,092-value Shai-Hulud rule
takes about a minute over a few hundred events); searches get `SEARCH_TIMEOUT` seconds.

On the SigmaHQ regression samples of the corpus (198 convertible rules with their events)
hunts and the streaming matcher match the same events for 197 rules. Known gaps: Defender's EventData
names with spaces (`Source Name` for Sigma's `SourceName`: the matcher finds them, a hunt
silently does not; the mapping or the parser should settle one spelling); `|fieldref` (the backend refuses it), `|cased`, correlation
rules and unresolved placeholders are reported as not convertible; values longer than the
keyword fields' `ignore_above` (1,024) are not indexed and cannot be found by any query;
CIDR on a field mapped as keyword matches nothing; a Lucene `.` also matches a newline.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from elastic_transport import TransportError
from elasticsearch import ApiError
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionIdentifier,
    ConditionOR,
)
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaExpansion,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)
from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from detections.alerts import alert_id, event_fields, group_by_of, make_alert
from detections.sigma.loader import LoadedRule, RuleError, load_rules
from detections.sigma.mapping import UnmappedLogsource, variants
from socmon.db import Base, Database
from socmon.errors import SocmonError, StoreError
from socmon.logging import kv
from socmon.store import Store

log = logging.getLogger("socmon.detections.hunt")

EVENT_TIME = "@timestamp"
INGEST_TIME = "event.ingested"
DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_MATCHES = 10_000
_SCROLL_KEEPALIVE = "5m"
SEARCH_TIMEOUT = 300.0
"""Seconds one hunt search request may take."""


class HuntError(SocmonError):
    """A hunt could not run (bad time expression, store failure during a hunt)."""


# ---------------------------------------------------------------------------------------------
# Sigma's matching semantics in Lucene


EVENT_DATA = "winlog.event_data."
USER_DATA = "winlog.user_data."
MAX_REGEX_LENGTH = 1000
"""Elasticsearch's default `index.max_regex_length`; a longer regexp is refused."""
_QUANTIFIER_BRACES = re.compile(r"\{\d+(,\d*)?\}")
_INLINE_FLAGS = re.compile(r"^\(\?([a-zA-Z]+)\)")
_CLASS_SHORTHANDS = frozenset("dDsSwW")


class _NotLucene(SigmaFeatureNotSupportedByBackendError):
    """A regular expression Lucene's regexp syntax cannot express."""


def _has_case(ch: str) -> bool:
    lower, upper = ch.lower(), ch.upper()
    return lower != upper and len(lower) == 1 and len(upper) == 1


def _lit(ch: str, caseless: bool) -> str:
    """One literal character as a Lucene regexp (`[aA]` when caseless; punctuation escaped)."""
    if caseless and _has_case(ch):
        return f"[{ch.lower()}{ch.upper()}]"
    if ch.isalnum() or ord(ch) > 127:
        return ch
    if ch == "\\":
        # Not a doubled backslash: query_string ends a regexp at the first `/` not preceded
        # by a backslash, so a doubled backslash before a `/` reads as an escaped slash.
        return "[\\\\]"
    return "\\" + ch


def _class_lit(ch: str) -> str:
    return ch if ch.isalnum() or ord(ch) > 127 else "\\" + ch


def sigma_string_regex(value: SigmaString) -> str:
    """A Sigma string (with `*`/`?` wildcards) as a case-insensitive Lucene regexp."""
    out: list[str] = []
    for part in value.s:
        if isinstance(part, str):
            out.extend(_lit(ch, True) for ch in part)
        elif part == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            raise _NotLucene(f"unresolved placeholder {part!r}")
    return "".join(out)


def _class(pattern: str, i: int, caseless: bool) -> tuple[str, int]:
    """Translate the character class starting at pattern[i] == '['; returns (class, next i)."""
    j = i + 1
    negated = j < len(pattern) and pattern[j] == "^"
    if negated:
        j += 1
    items: list[tuple[str, str]] = []  # (first, last) of each range; single chars: first == last
    first = True
    while j < len(pattern) and (pattern[j] != "]" or first):
        first = False
        ch = pattern[j]
        if ch == "\\":
            if j + 1 >= len(pattern):
                raise _NotLucene("regular expression ends with a backslash")
            esc = pattern[j + 1]
            if esc.isalnum():
                raise _NotLucene(f"escape \\{esc} inside a character class")
            ch, j = esc, j + 2
        else:
            j += 1
        if j + 1 < len(pattern) and pattern[j] == "-" and pattern[j + 1] != "]":
            last = pattern[j + 1]
            if last == "\\":
                if j + 2 >= len(pattern) or pattern[j + 2].isalnum():
                    raise _NotLucene("escape in a character class range")
                last, j = pattern[j + 2], j + 3
            else:
                j += 2
            items.append((ch, last))
        else:
            items.append((ch, ch))
    if j >= len(pattern):
        raise _NotLucene("unterminated character class")
    if caseless:
        extra: list[tuple[str, str]] = []
        for lo, hi in items:
            if _has_case(lo) and _has_case(hi) and lo.islower() == hi.islower():
                swap = (lo.upper(), hi.upper()) if lo.islower() else (lo.lower(), hi.lower())
                if swap not in items:
                    extra.append(swap)
        items.extend(extra)
    # A literal backslash goes last, so that its escape is followed by `]`, never by `\/`.
    items.sort(key=lambda item: item == ("\\", "\\"))
    body = "".join(
        _class_lit(lo) if lo == hi else f"{_class_lit(lo)}-{_class_lit(hi)}" for lo, hi in items
    )
    return ("[^" if negated else "[") + body + "]", j + 1


def python_regex_to_lucene(pattern: str, *, ignorecase: bool = False) -> str:
    """A Sigma (Python `re.search`) regular expression as a Lucene regexp with the same matches.

    Lucene regexps match the whole term and know no anchors, inline flags, lazy quantifiers,
    non-capturing groups, lookarounds, word boundaries or back-references; and `#@&<>~"` are
    operators there. Searching becomes `.*(…).*` unless anchored with `^`/`$`, `(?i)`/`|re|i`
    become `[aA]` classes, `(?:` becomes `(`, lazy quantifiers become greedy (the same
    strings match); what has no equivalent raises SigmaFeatureNotSupportedByBackendError.
    """
    flags = _INLINE_FLAGS.match(pattern)
    if flags:
        unknown = set(flags.group(1)) - {"i", "s"}
        if unknown:
            raise _NotLucene(f"inline regex flags {''.join(sorted(unknown))!r}")
        ignorecase = ignorecase or "i" in flags.group(1)
        pattern = pattern[flags.end() :]
    start = pattern.startswith("^")
    if start:
        pattern = pattern[1:]
    end = False
    if pattern.endswith("$"):
        backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
        if backslashes % 2 == 0:
            end, pattern = True, pattern[:-1]
    out: list[str] = []
    depth = 0
    top_level_or = False
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise _NotLucene("regular expression ends with a backslash")
            esc = pattern[i + 1]
            if esc in _CLASS_SHORTHANDS:
                out.append("\\" + esc)
            elif esc.isalnum():
                raise _NotLucene(f"regex escape \\{esc} has no Lucene equivalent")
            else:
                out.append(_lit(esc, ignorecase))
            i += 2
            continue
        if ch == "[":
            cls, i = _class(pattern, i, ignorecase)
            out.append(cls)
            continue
        if ch == "(":
            if pattern.startswith("(?:", i):
                i += 3
            elif pattern.startswith("(?", i):
                raise _NotLucene(f"regex group {pattern[i : i + 3]!r}… has no Lucene equivalent")
            else:
                i += 1
            depth += 1
            out.append("(")
            continue
        if ch == ")":
            depth -= 1
            out.append(")")
            i += 1
            continue
        if ch == "|":
            top_level_or = top_level_or or depth == 0
            out.append("|")
            i += 1
            continue
        if ch in "*+?":
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "?":
                i += 1  # lazy: matches the same strings
            elif i < n and pattern[i] == "+":
                raise _NotLucene("possessive quantifier")
            continue
        if ch == "{":
            braces = _QUANTIFIER_BRACES.match(pattern, i)
            if braces:
                out.append(braces.group(0))
                i = braces.end()
                if i < n and pattern[i] == "?":
                    i += 1
                continue
            out.append("\\{")
            i += 1
            continue
        if ch == ".":
            out.append(".")
            i += 1
            continue
        if ch in "^$":
            raise _NotLucene(f"anchor {ch!r} inside the regular expression")
        out.append(_lit(ch, ignorecase))
        i += 1
    if (start or end) and top_level_or:
        raise _NotLucene("anchored alternation (^a|b$)")
    body = "".join(out)
    return ("" if start else ".*") + f"({body})" + ("" if end else ".*")


class SigmaLuceneBackend(LuceneBackend):
    """pySigma's Lucene backend with Sigma's own matching semantics on keyword fields.

    - Strings are case-insensitive in Sigma but keyword terms are not: a value with letters
      becomes a regexp with a `[aA]` class per letter (values without letters, IP addresses
      and values whose regexp would pass Elasticsearch's 1,000-character limit keep the
      backend's wildcard form; the last are listed in `notes`).
    - Sigma regexps search (`re.search`); Lucene's match the whole term: see
      :func:`python_regex_to_lucene`.
    """

    convert_or_as_in = False  # `field:(a OR b)` would bypass the per-value conversion

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []

    @staticmethod
    def caseless_regex(value: Any) -> str | None:
        """The case-insensitive regexp for a string value, or None where case cannot matter
        (no letters; an IP address, which may sit in an `ip` field that takes no regexp)."""
        if not isinstance(value, SigmaString) or not any(
            isinstance(part, str) and any(_has_case(c) for c in part) for part in value.s
        ):
            return None
        if not value.contains_special() and _is_ip(str(value)):
            return None
        return sigma_string_regex(value)

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        regex = self.caseless_regex(cond.value)
        if regex is not None:
            if len(regex) <= MAX_REGEX_LENGTH:
                return f"{self.escape_and_quote_field(cond.field)}:/{regex}/"
            self.notes.append(
                f"{cond.field}: a value of {len(str(cond.value))} characters is matched "
                "case-sensitively (its case-insensitive regexp is too long)"
            )
        return super().convert_condition_field_eq_val_str(cond, state)

    def _or_user_data(self, name: str, render: Callable[[str], str]) -> str:
        """`render(field)`, also read from UserData when the field is Windows EventData.

        As the streaming matcher reads it: a Windows event keeps its data in EventData or in
        UserData (WMI, AppLocker, log cleared…); Sigma names both alike, the mapping writes
        `winlog.event_data.*`; the UserData field counts when the EventData one is absent.
        """
        main = render(name)
        if not name.startswith(EVENT_DATA):
            return main
        other = render(USER_DATA + name[len(EVENT_DATA) :])
        return f"({main} OR ((NOT _exists_:{self.escape_and_quote_field(name)}) AND {other}))"

    def convert_condition_field_eq_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        name = cond.field
        if (
            not (isinstance(name, str) and name.startswith(EVENT_DATA))
            or isinstance(cond.value, SigmaExpansion)  # its OR reads UserData value by value
        ):
            return super().convert_condition_field_eq_val(cond, state)

        def render(field_name: str) -> Any:
            alt = copy.copy(cond)  # keeps pySigma's parent and source links
            alt.field = field_name
            return super(SigmaLuceneBackend, self).convert_condition_field_eq_val(alt, state)

        main = render(name)
        if not isinstance(main, str):
            return main
        if isinstance(cond.value, SigmaNull):  # absent from both
            return f"({main} AND {render(USER_DATA + name[len(EVENT_DATA) :])})"
        return self._or_user_data(name, lambda field_name: str(render(field_name)))

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        """Values of one field OR-ed (a Sigma list): one alternation regexp per 1,000
        characters instead of one regexp per value (IOC lists run to a thousand values)."""
        groups: dict[str, list[str]] = {}
        for arg in cond.args:
            if isinstance(arg, ConditionFieldEqualsValueExpression) and isinstance(arg.field, str):
                regex = self.caseless_regex(arg.value)
                if regex is not None and len(regex) + 2 <= MAX_REGEX_LENGTH:
                    groups.setdefault(arg.field, []).append(regex)
        merged = {name: regexes for name, regexes in groups.items() if len(regexes) > 1}
        if not merged:
            return super().convert_condition_or(cond, state)

        def regexp_query(alternation: str) -> Callable[[str], str]:
            return lambda field_name: f"{self.escape_and_quote_field(field_name)}:/{alternation}/"

        parts: list[str] = []
        for name, regexes in merged.items():
            for chunk in _chunks(list(dict.fromkeys(regexes)), MAX_REGEX_LENGTH):
                alternation = chunk[0] if len(chunk) == 1 else "(" + "|".join(chunk) + ")"
                parts.append(self._or_user_data(name, regexp_query(alternation)))
        for arg in cond.args:  # everything not merged, in its original order
            if isinstance(arg, ConditionFieldEqualsValueExpression) and arg.field in merged:
                regex = self.caseless_regex(arg.value)
                if regex is not None and len(regex) + 2 <= MAX_REGEX_LENGTH:
                    continue
            if arg is None or isinstance(arg, ConditionIdentifier):
                continue  # resolved by pySigma before conversion
            inner: Any = arg  # LuceneBackend types compare_precedence narrower than pySigma
            converted = (
                self.convert_condition(arg, state)
                if self.compare_precedence(cond, inner)
                else self.convert_condition_group(arg, state)
            )
            if isinstance(converted, str):
                parts.append(converted)
        return " OR ".join(parts)

    def convert_condition_field_eq_expansion(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        # The Lucene backend passes `cond` instead of the OR it builds when it does not use an
        # in-expression (AttributeError); build the OR here.
        value = cond.value
        if not isinstance(value, SigmaExpansion):
            return super().convert_condition_field_eq_expansion(cond, state)
        or_cond = ConditionOR(
            [ConditionFieldEqualsValueExpression(cond.field, v) for v in value.values],
            getattr(cond, "source", None),
        )
        # Grouped: the caller sees one field condition and adds no parentheses.
        return self.group_expression.format(expr=self.convert_condition_or(or_cond, state))

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        value = cond.value
        if not isinstance(value, SigmaRegularExpression):
            return super().convert_condition_field_eq_val_re(cond, state)
        flags = {f.name.lower() for f in value.flags}
        if flags - {"ignorecase", "dotall"}:
            raise _NotLucene(f"regex flags {', '.join(sorted(flags))}")
        regex = python_regex_to_lucene(str(value.regexp), ignorecase="ignorecase" in flags)
        if len(regex) > MAX_REGEX_LENGTH:
            raise _NotLucene(f"regexp of {len(regex)} characters (Elasticsearch allows 1,000)")
        return f"{self.escape_and_quote_field(cond.field)}:/{regex}/"


def _chunks(regexes: list[str], limit: int) -> Iterator[list[str]]:
    """Alternatives grouped so that `(a|b|…)` stays within `limit` characters."""
    chunk: list[str] = []
    size = 2
    for regex in regexes:
        if chunk and size + len(regex) + 1 > limit:
            yield chunk
            chunk, size = [], 2
        chunk.append(regex)
        size += len(regex) + 1
    if chunk:
        yield chunk


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Rules -> queries


@dataclass(frozen=True)
class HuntQuery:
    """One rule ready to hunt: its metadata and the store query of all its variants."""

    rule_id: str
    title: str
    level: str
    tags: tuple[str, ...]
    path: Path | None
    custom: Mapping[str, Any]
    query: dict[str, Any]
    """Bool query: `should` = one backend query per variant (no time filter yet)."""
    variants: int
    notes: tuple[str, ...] = ()
    """Where the query is weaker than Sigma's semantics (e.g. a value matched case-sensitively)."""


@dataclass(frozen=True)
class Unconvertible:
    """A rule that cannot run as a hunt, and why."""

    rule_id: str
    path: Path | None
    reason: str


def rule_id_of(rule: SigmaRule, path: Path | None = None) -> str:
    """The rule's id as the streaming engine derives it (id, else name, path, title)."""
    if rule.id is not None:
        return str(rule.id)
    if rule.name:
        return str(rule.name)
    if path is not None:
        return str(path)
    return str(rule.title)


def compile_query(rule: SigmaRule, path: Path | None = None) -> HuntQuery | Unconvertible:
    """The hunt query of one rule, or why there is none."""
    if path is None and rule.source is not None:
        path = Path(str(rule.source.path))
    rid = rule_id_of(rule, path)
    try:
        copies = variants(rule)
    except UnmappedLogsource as e:
        return Unconvertible(rid, path, e.reason)
    except (SigmaError, ValueError, TypeError, KeyError) as e:
        return Unconvertible(rid, path, f"field mapping failed: {_reason(e)}")
    if not copies:
        return Unconvertible(rid, path, "no log channel carries this rule's log source")
    should: list[dict[str, Any]] = []
    notes: list[str] = []
    for variant in copies:
        backend = SigmaLuceneBackend()  # one per conversion: a backend keeps per-rule state
        try:
            outputs = backend.convert_rule(variant, "dsl_lucene")
        except (
            SigmaError,
            NotImplementedError,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        ) as e:  # pySigma raises plain Python errors for some rules; report, do not crash
            return Unconvertible(rid, path, f"backend cannot convert the rule: {_reason(e)}")
        for output in outputs:
            if not isinstance(output, dict) or "query" not in output:
                return Unconvertible(rid, path, f"unexpected backend output: {output!r:.200}")
            should.append(output["query"])
        notes.extend(n for n in backend.notes if n not in notes)
    return HuntQuery(
        rule_id=rid,
        title=str(rule.title),
        level=str(rule.level) if rule.level is not None else "",
        tags=tuple(str(t) for t in rule.tags),
        path=path,
        custom=dict(rule.custom_attributes),
        query={"bool": {"should": should, "minimum_should_match": 1}},
        variants=len(copies),
        notes=tuple(notes),
    )


def compile_queries(
    rules: Sequence[LoadedRule | SigmaRule],
) -> tuple[list[HuntQuery], list[Unconvertible]]:
    queries: list[HuntQuery] = []
    failed: list[Unconvertible] = []
    for item in rules:
        rule, path = (item.rule, item.path) if isinstance(item, LoadedRule) else (item, None)
        compiled = compile_query(rule, path)
        if isinstance(compiled, HuntQuery):
            queries.append(compiled)
        else:
            failed.append(compiled)
    return queries, failed


def _reason(error: BaseException) -> str:
    if isinstance(error, SigmaError) and error.args:
        return str(error.args[0])
    text = str(error) or type(error).__name__
    return text.replace(" (while converting rule None)", "")


# ---------------------------------------------------------------------------------------------
# Time


_RELATIVE = re.compile(r"^-?(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """`now`, a time ago (`-24h`, `30m`, `-7d`, `90s`, `2w`; the minus is optional, since
    argparse takes `--since -24h` for an option: write `--since=-24h` or `--since 24h`),
    or ISO 8601 (naive = UTC)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value.lower() == "now":
        return _floor_ms(now)
    match = _RELATIVE.match(value.lower())
    if match:
        return _floor_ms(now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise HuntError(
            f"not a time: {text!r} (use ISO 8601, 'now', or a time ago like 24h, 30m, 7d)"
        ) from e
    return _floor_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _floor_ms(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Running hunts


@dataclass
class Match:
    """One stored event a rule matched."""

    rule_id: str
    index: str
    event: dict[str, Any]
    """The event's source with `_id` and `_index` added."""


@dataclass
class RuleResult:
    """What one rule found in one window."""

    query: HuntQuery
    matches: list[Match] = field(default_factory=list)
    total: int = 0
    """Matching events in the window, as counted by the store."""
    truncated: bool = False
    """The cap was hit: `total - len(matches)` matches were not read."""
    error: str | None = None


@dataclass
class HuntReport:
    """The outcome of one hunt: per-rule results, rules not run, alerts written."""

    since: datetime
    until: datetime
    time_field: str
    results: list[RuleResult] = field(default_factory=list)
    unconvertible: list[Unconvertible] = field(default_factory=list)
    load_errors: list[RuleError] = field(default_factory=list)
    alerts_created: int = 0
    alerts_existing: int = 0

    @property
    def matches(self) -> list[Match]:
        return [m for r in self.results for m in r.matches]

    @property
    def complete(self) -> bool:
        """Every rule loaded, converted, ran without error and was read to the end."""
        return not (
            self.unconvertible
            or self.load_errors
            or any(r.truncated or r.error for r in self.results)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "time_field": self.time_field,
            "complete": self.complete,
            "rules": [
                {
                    "rule_id": r.query.rule_id,
                    "title": r.query.title,
                    "path": str(r.query.path) if r.query.path else None,
                    "total": r.total,
                    "returned": len(r.matches),
                    "truncated": r.truncated,
                    "error": r.error,
                    "notes": list(r.query.notes),
                    "matches": [{"index": m.index, "event_id": m.event["_id"]} for m in r.matches],
                }
                for r in self.results
            ],
            "unconvertible": [
                {"rule_id": u.rule_id, "path": str(u.path) if u.path else None, "reason": u.reason}
                for u in self.unconvertible
            ],
            "load_errors": [
                {"path": str(e.path), "rule_id": e.rule_id, "reason": e.reason}
                for e in self.load_errors
            ],
            "alerts_created": self.alerts_created,
            "alerts_existing": self.alerts_existing,
        }


def events_pattern(store: Store) -> str:
    """Every events data stream / alias of the store's namespace."""
    return f"logs-*-{store.namespace}"


def window_query(
    query: HuntQuery, since: datetime, until: datetime, time_field: str
) -> dict[str, Any]:
    return {
        "bool": {
            "filter": [
                {"range": {time_field: {"gte": iso(since), "lt": iso(until)}}},
                query.query,
            ]
        }
    }


def _describe(e: Exception) -> str:
    if isinstance(e, ApiError):
        return f"HTTP {e.meta.status}: {e.message}"
    return f"{type(e).__name__}: {e}"


def _scroll_hits(
    store: Store, target: str, query: dict[str, Any], page_size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(total, page of hits) per page, read with a scroll (a consistent view of the window)."""
    # A hunt query (a rule with a long list of values, a wide window) may run longer than the
    # store client's 30 s default.
    client = store.client.options(request_timeout=SEARCH_TIMEOUT)
    scroll_id: str | None = None
    try:
        resp = client.search(
            index=target,
            query=query,
            size=page_size,
            sort=["_doc"],
            scroll=_SCROLL_KEEPALIVE,
            track_total_hits=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        while True:
            scroll_id = resp.get("_scroll_id") or scroll_id
            hits = resp["hits"]["hits"]
            total = resp["hits"]["total"]
            yield (int(total["value"] if isinstance(total, dict) else total), hits)
            if len(hits) < page_size or scroll_id is None:
                return
            resp = client.scroll(scroll_id=scroll_id, scroll=_SCROLL_KEEPALIVE)
    except (TransportError, ApiError) as e:
        raise StoreError(f"hunt search of {target} failed: {_describe(e)}") from e
    finally:
        if scroll_id is not None:
            try:
                client.clear_scroll(scroll_id=scroll_id)
            except (TransportError, ApiError) as e:  # the scroll expires by itself
                log.debug("clear_scroll failed %s", kv(error=_describe(e)))


def hunt_rule(
    store: Store,
    query: HuntQuery,
    since: datetime,
    until: datetime,
    *,
    time_field: str = EVENT_TIME,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_matches: int | None = DEFAULT_MAX_MATCHES,
) -> RuleResult:
    """Every event `query` matches in `[since, until)`; stops at `max_matches` and says so."""
    result = RuleResult(query)
    body = window_query(query, since, until, time_field)
    for total, hits in _scroll_hits(store, events_pattern(store), body, page_size):
        result.total = total
        for hit in hits:
            if max_matches is not None and len(result.matches) >= max_matches:
                result.truncated = True
                return result
            event = {"_id": hit["_id"], "_index": hit["_index"], **hit.get("_source", {})}
            result.matches.append(Match(query.rule_id, hit["_index"], event))
    if max_matches is not None and result.total > len(result.matches):
        result.truncated = True
    return result


def run_hunt(
    store: Store,
    rules: Sequence[LoadedRule | SigmaRule | HuntQuery],
    since: datetime,
    until: datetime,
    *,
    time_field: str = EVENT_TIME,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_matches: int | None = DEFAULT_MAX_MATCHES,
    write_alerts: bool = False,
) -> HuntReport:
    """Hunt every rule over `[since, until)` of `time_field`.

    Rules that cannot be converted are in `report.unconvertible`; a rule whose search fails
    has `error` set and the others still run; a rule with more than `max_matches` matches
    (None = no cap) has `truncated` set. With `write_alerts`, alerts are created in the
    alerts index (existing ones - same rule, same event - are counted, not duplicated).
    """
    if since >= until:
        raise HuntError(f"empty window: since {iso(since)} is not before until {iso(until)}")
    queries = [r for r in rules if isinstance(r, HuntQuery)]
    compiled, failed = compile_queries([r for r in rules if not isinstance(r, HuntQuery)])
    report = HuntReport(since=since, until=until, time_field=time_field, unconvertible=failed)
    for unconvertible in failed:
        log.warning(
            "hunt rule not convertible %s",
            kv(rule_id=unconvertible.rule_id, path=unconvertible.path, reason=unconvertible.reason),
        )
    for query in [*queries, *compiled]:
        try:
            result = hunt_rule(
                store,
                query,
                since,
                until,
                time_field=time_field,
                page_size=page_size,
                max_matches=max_matches,
            )
        except StoreError as e:
            result = RuleResult(query, error=str(e))
            log.warning("hunt rule failed %s", kv(rule_id=query.rule_id, error=e))
        if result.truncated:
            log.warning(
                "hunt capped %s",
                kv(rule_id=query.rule_id, total=result.total, returned=len(result.matches)),
            )
        report.results.append(result)
    if write_alerts:
        created, existing = write_hunt_alerts(store, report)
        report.alerts_created, report.alerts_existing = created, existing
    return report


# ---------------------------------------------------------------------------------------------
# Alerts


def build_hunt_alert(
    query: HuntQuery, event: Mapping[str, Any], *, hunt: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The alert for `query` matching stored `event`: streaming alerts' shape and id."""
    event_id = str(event.get("_id", ""))
    fields = event_fields(event)
    fields["socmon"] = {
        **fields.get("socmon", {}),
        "hunt": {"index": event.get("_index"), **(hunt or {})},
    }
    return make_alert(
        alert_id=alert_id(query.rule_id, event_id),
        rule_id=query.rule_id,
        title=query.title,
        level=query.level,
        tags=query.tags,
        group_by=group_by_of(query.custom),
        timestamp=str(event.get("@timestamp") or iso(datetime.now(UTC))),
        event_id=event_id,
        fields=fields,
        rule_path=str(query.path) if query.path else None,
    )


def alerts_of(report: HuntReport) -> list[dict[str, Any]]:
    hunt = {"time_field": report.time_field, "since": iso(report.since), "until": iso(report.until)}
    return [
        build_hunt_alert(result.query, match.event, hunt=hunt)
        for result in report.results
        for match in result.matches
    ]


def write_alerts(store: Store, alerts: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Create alerts in the alerts index; returns (created, already there).

    `event.ingested` is stamped now, as the shipper does, so the incident service's alert
    puller (which reads the alerts index in `event.ingested` order) picks them up. Raises
    StoreError unless every alert is stored (created or already there).
    """
    created = existing = 0
    ingested = iso(datetime.now(UTC))
    docs: list[tuple[str, dict[str, Any]]] = []
    for alert in alerts:
        doc = {k: v for k, v in alert.items() if k != "_id"}
        doc["event"] = {**doc.get("event", {}), "ingested": ingested}
        docs.append((str(alert["_id"]), doc))
    for start in range(0, len(docs), DEFAULT_PAGE_SIZE):
        pending = docs[start : start + DEFAULT_PAGE_SIZE]
        result = store.bulk_create(store.alerts_target, pending)
        created += result.created
        existing += result.duplicates
        if result.rejected or result.retryable:
            reasons = [reason for _, _, reason in result.rejected] or ["store busy (retryable)"]
            raise StoreError(
                f"{len(result.rejected) + len(result.retryable)} hunt alerts not stored: "
                f"{reasons[0][:200]}"
            )
    return created, existing


def write_hunt_alerts(store: Store, report: HuntReport) -> tuple[int, int]:
    return write_alerts(store, alerts_of(report))


# ---------------------------------------------------------------------------------------------
# Scheduled hunts


class HuntWatermark(Base):
    """How far (in `event.ingested`) a scheduled hunt of one rule has looked."""

    __tablename__ = "hunt_watermarks"

    rule_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    watermark: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Every event ingested before this moment has been hunted (exclusive upper bound)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    matches: Mapped[int] = mapped_column(Integer, default=0)
    """Matches found by scheduled runs so far (alerts created or already there)."""
    last_error: Mapped[str | None] = mapped_column(String(1000), default=None)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def get_watermark(db: Database, rule_id: str) -> datetime | None:
    with db.session() as session:
        row = session.get(HuntWatermark, rule_id)
        return _utc(row.watermark) if row is not None else None


def _duration(value: Any) -> float | None:
    """Seconds from a number or a `15m`/`1h`/`30s`/`1d` string; None when unusable."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value.lower())
        if match:
            scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
            seconds = int(match.group(1)) * scale
            return float(seconds) if seconds > 0 else None
    return None


@dataclass
class ScheduledRun:
    """One run of one rule's scheduled hunt: the windows covered and what they found."""

    rule_id: str
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    matches: int = 0
    alerts_created: int = 0
    watermark: datetime | None = None
    error: str | None = None
    behind: bool = False
    """More windows remain (the run stopped at `max_slices`); the next run continues."""


class HuntScheduler:
    """Scheduled hunts with APScheduler: each rule on its own interval, with a watermark.

    Each run of a rule covers `[watermark, now - lag)` of `event.ingested` in slices of at
    most `max_slice` seconds (at most `max_slices` per run, the rest in the next run), so a
    restart after downtime catches up in bounded searches. After each slice the matches
    are stored as alerts, then the watermark is advanced and committed: a crash or a store
    failure repeats at most the slice in progress, and repeated alerts are not duplicated
    (same id). A rule without a watermark starts `initial_lookback` seconds back.

    A rule's interval is its `hunt_interval` attribute (seconds, or `15m`, `1h`, `1d`),
    else `interval`. Jobs never overlap (`max_instances=1`) and missed runs coalesce. Run
    one scheduler per database: watermarks carry no lock.
    """

    def __init__(
        self,
        store: Store,
        db: Database,
        rules: Sequence[LoadedRule | SigmaRule],
        *,
        interval: float = 300.0,
        lag: float = 120.0,
        max_slice: float = 3600.0,
        max_slices: int = 24,
        initial_lookback: float = 3600.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_slice <= 0 or max_slices < 1 or lag < 0 or interval <= 0:
            raise ValueError("interval and max_slice must be > 0, lag >= 0, max_slices >= 1")
        self.store = store
        self.db = db
        self.interval = interval
        self.lag = timedelta(seconds=lag)
        self.max_slice = timedelta(seconds=max_slice)
        self.max_slices = max_slices
        self.initial_lookback = timedelta(seconds=initial_lookback)
        self.page_size = page_size
        self.clock = clock or (lambda: datetime.now(UTC))
        queries, self.unconvertible = compile_queries(rules)
        self.queries = {q.rule_id: q for q in queries}
        for failed in self.unconvertible:
            log.warning(
                "scheduled hunt rule not convertible %s",
                kv(rule_id=failed.rule_id, path=failed.path, reason=failed.reason),
            )
        self._scheduler: Any = None
        self._lock = threading.Lock()

    def interval_of(self, query: HuntQuery) -> float:
        return _duration(query.custom.get("hunt_interval")) or self.interval

    # -- the job ------------------------------------------------------------------------
    def run_rule(self, rule_id: str, now: datetime | None = None) -> ScheduledRun:
        """Hunt one rule from its watermark up to `now - lag`; the job APScheduler runs."""
        query = self.queries[rule_id]
        end = _floor_ms((now or self.clock()) - self.lag)
        run = ScheduledRun(rule_id)
        start = get_watermark(self.db, rule_id) or _floor_ms(end - self.initial_lookback)
        run.watermark = start
        while start < end:
            if len(run.windows) >= self.max_slices:
                run.behind = True
                break
            stop = min(start + self.max_slice, end)
            try:
                result = hunt_rule(
                    self.store,
                    query,
                    start,
                    stop,
                    time_field=INGEST_TIME,
                    page_size=self.page_size,
                    max_matches=None,
                )
                hunt = {"time_field": INGEST_TIME, "since": iso(start), "until": iso(stop)}
                alerts = [build_hunt_alert(query, m.event, hunt=hunt) for m in result.matches]
                created, _existing = write_alerts(self.store, alerts)
            except StoreError as e:
                run.error = str(e)
                self._record_error(rule_id, str(e))
                log.warning(
                    "scheduled hunt paused %s",
                    kv(rule_id=rule_id, window_start=iso(start), error=e),
                )
                break
            self._advance(rule_id, stop, len(result.matches))
            run.windows.append((start, stop))
            run.matches += len(result.matches)
            run.alerts_created += created
            run.watermark = start = stop
        if run.windows:
            log.info(
                "scheduled hunt ran %s",
                kv(
                    rule_id=rule_id,
                    windows=len(run.windows),
                    matches=run.matches,
                    watermark=iso(run.watermark) if run.watermark else None,
                    behind=run.behind,
                ),
            )
        return run

    def run_all(self, now: datetime | None = None) -> list[ScheduledRun]:
        return [self.run_rule(rule_id, now) for rule_id in self.queries]

    def _advance(self, rule_id: str, watermark: datetime, matches: int) -> None:
        with self.db.session() as session:
            row = session.get(HuntWatermark, rule_id)
            now = datetime.now(UTC)
            if row is None:
                session.add(
                    HuntWatermark(
                        rule_id=rule_id,
                        watermark=watermark,
                        updated_at=now,
                        matches=matches,
                        last_error=None,
                    )
                )
            else:
                row.watermark = watermark
                row.updated_at = now
                row.matches = (row.matches or 0) + matches
                row.last_error = None

    def _record_error(self, rule_id: str, error: str) -> None:
        with self.db.session() as session:
            row = session.get(HuntWatermark, rule_id)
            if row is not None:
                row.last_error = error[:1000]
                row.updated_at = datetime.now(UTC)

    # -- APScheduler ----------------------------------------------------------------------
    def start(self, *, run_now: bool = True) -> None:
        """Schedule every convertible rule in a background thread (first runs at once, or
        after one interval with `run_now=False`)."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        with self._lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(timezone=UTC)
            first = datetime.now(UTC) if run_now else None
            for rule_id, query in self.queries.items():
                scheduler.add_job(
                    self.run_rule,
                    IntervalTrigger(seconds=self.interval_of(query), timezone=UTC),
                    args=[rule_id],
                    id=f"hunt:{rule_id}",
                    name=f"hunt {query.title}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                    **({"next_run_time": first} if first is not None else {}),
                )
            scheduler.start()
            self._scheduler = scheduler
        log.info(
            "hunt scheduler started %s",
            kv(rules=len(self.queries), unconvertible=len(self.unconvertible)),
        )

    def jobs(self) -> list[tuple[str, float]]:
        """(job id, interval in seconds) of the scheduled jobs."""
        if self._scheduler is None:
            return []
        return [
            (job.id, job.trigger.interval.total_seconds()) for job in self._scheduler.get_jobs()
        ]

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)
            log.info("hunt scheduler stopped")


def watermarks(db: Database) -> dict[str, datetime]:
    with db.session() as session:
        rows = session.scalars(select(HuntWatermark)).all()
        return {row.rule_id: _utc(row.watermark) for row in rows}


# ---------------------------------------------------------------------------------------------
# CLI


def add_hunt_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hunt = subparsers.add_parser(
        "hunt",
        help="run Sigma rules over stored events (converted to Elasticsearch queries)",
        description=(
            "Run Sigma rules (files or folders) over the events already in the store. "
            "Rules that cannot be converted are listed with the reason. Exit 0 when every "
            "rule ran to the end, 1 when some rule was not converted, failed or hit the cap."
        ),
    )
    hunt.add_argument("rules", nargs="+", type=Path, help="Sigma rule files or folders")
    hunt.add_argument(
        "--since",
        default="-24h",
        help="start (inclusive): ISO 8601, or a time ago: --since 24h, --since=-7d (default -24h)",
    )
    hunt.add_argument("--until", default="now", help="end (exclusive): ISO 8601 or now")
    hunt.add_argument(
        "--time-field",
        choices=(EVENT_TIME, INGEST_TIME),
        default=EVENT_TIME,
        help="window on event time (default) or on the time the event was stored",
    )
    hunt.add_argument(
        "--max-matches",
        type=int,
        default=DEFAULT_MAX_MATCHES,
        help=f"matches read per rule before stopping (reported; default {DEFAULT_MAX_MATCHES})",
    )
    hunt.add_argument("--json", action="store_true", help="print the report as JSON")
    hunt.add_argument(
        "--write-alerts",
        action="store_true",
        help="create alerts for the matches in the alerts index (a rerun adds none twice)",
    )
    hunt.set_defaults(func=cmd_hunt)


def cmd_hunt(args: argparse.Namespace) -> int:
    from socmon.config import get_settings
    from socmon.logging import setup_logging

    if getattr(args, "config", None):
        import os

        os.environ["SOCMON_CONFIG"] = args.config
        get_settings.cache_clear()
    settings = get_settings()
    setup_logging(settings.log_level)
    now = datetime.now(UTC)
    since, until = parse_when(args.since, now), parse_when(args.until, now)
    if args.max_matches < 1:
        raise HuntError("--max-matches must be at least 1")
    ruleset = load_rules(args.rules)
    if not settings.es_url:
        raise StoreError(
            "socmon hunt searches the event store and needs its address: set SOCMON_ES_URL. "
            "The embedded store of a running `socmon up` listens on a port of its own choosing "
            "(logged at start as 'embedded store started url=…'); set SOCMON_ES_URL to it. "
            "Without a running store there are no events to hunt: the embedded store keeps "
            "events in memory only."
        )
    store = Store.connect(settings)
    try:
        report = run_hunt(
            store,
            ruleset.rules,
            since,
            until,
            time_field=args.time_field,
            max_matches=args.max_matches,
            write_alerts=args.write_alerts,
        )
    finally:
        store.close()
    report.load_errors = list(ruleset.errors)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_report(report, sys.stdout)
    return 0 if report.complete else 1


def print_report(report: HuntReport, out: TextIO) -> None:
    out.write(
        f"hunt {report.time_field} in [{iso(report.since)}, {iso(report.until)}): "
        f"{len(report.results)} rules run, {len(report.matches)} matches\n"
    )
    for result in report.results:
        q = result.query
        status = f"{result.total} matches"
        if result.error:
            status = f"FAILED: {result.error}"
        elif result.truncated:
            status = f"{result.total} matches, CAPPED: only {len(result.matches)} read"
        out.write(f"  {q.rule_id}  {q.title}: {status}\n")
        for note in q.notes:
            out.write(f"      note: {note}\n")
        for match in result.matches:
            out.write(
                f"      {match.event.get('@timestamp', '')}  {match.index}  {match.event['_id']}\n"
            )
    for failed in report.unconvertible:
        out.write(f"  NOT RUN {failed.rule_id} ({failed.path}): {failed.reason}\n")
    for error in report.load_errors:
        out.write(f"  NOT LOADED {error.path}: {error.reason}\n")
    if report.alerts_created or report.alerts_existing:
        out.write(
            f"alerts: {report.alerts_created} created, {report.alerts_existing} already stored\n"
        )
