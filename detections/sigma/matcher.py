"""Compile Sigma detection rules into Python predicates and match them against ECS events.

A rule is compiled once: pySigma parses the YAML and builds the condition tree (modifiers such
as ``contains``, ``windash`` or ``base64offset`` are already applied to the values); this module
turns that tree into closures over an :class:`EventView`. Nothing is converted to a query
string. A construct that cannot be matched exactly raises :class:`UnsupportedRule` with the
reason, so a rule is either evaluated correctly or visibly not at all.

Matching semantics (Sigma specification, with the choices docs/decisions/0003 explains):

- strings are compared case-insensitively unless ``|cased``; ``*`` and ``?`` are wildcards;
  non-string scalars in the event are compared through their text (``4624`` → ``"4624"``,
  ``True`` → ``"true"``);
- numbers compare numerically and also match numeric strings in the event;
- a list in the event matches when any element matches;
- ``null`` matches an absent field or ``None``; ``|exists`` checks presence only;
- ``|re`` searches (unanchored, ``^``/``$`` anchor) with Python ``re`` and the ``i``/``m``/``s``
  flags; ``|cidr`` parses the event value as an IPv4/IPv6 address;
- keyword detections (values without a field) search every scalar value of the event,
  ``message`` and ``event.original`` included, as a case-insensitive substring.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.modifiers import (
    SigmaEndswithModifier,
    SigmaRegularExpressionModifier,
    SigmaStartswithModifier,
    SigmaUTF16Modifier,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.rule.detection import EmptySigmaDetections
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from socmon.errors import Location, SocmonError

if TYPE_CHECKING:
    from detections.sigma.loader import LoadedRule, RuleSet

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_second = operator.itemgetter(1)
Predicate = Callable[["EventView"], bool]
StrTest = Callable[[tuple[str, ...]], bool]


class UnsupportedRule(SocmonError):
    """A rule uses a construct the streaming matcher cannot evaluate exactly."""

    def __init__(
        self, reason: str, source: Location | None = None, rule_id: str | None = None
    ) -> None:
        super().__init__(reason, source)
        self.reason = reason
        self.rule_id = rule_id


# ---------------------------------------------------------------------------------------------
# Event access


def _text(value: Any) -> str | None:
    """The text of a scalar event value, as string matching sees it; None for non-scalars."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> int | float | None:
    """The numeric value of an event value: ints and floats, and strings that spell a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.fullmatch(s):
            return int(s)
        if _FLOAT_RE.fullmatch(s):
            return float(s)
    return None


def _number_key(n: int | float) -> str:
    """One spelling per numeric value (``4624``, ``4624.0`` → ``"4624"``), for the index."""
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)


@lru_cache(maxsize=65536)
def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _FieldPath:
    """A dotted field name resolved against nested dicts, flat dotted keys, or any mix."""

    __slots__ = ("fallback", "keys", "name", "parts")

    def __init__(self, name: str) -> None:
        self.name = name
        # A Windows event keeps its data in EventData or in UserData (WMI, AppLocker, log
        # cleared…); Sigma rules name both the same way, the mapping writes `event_data`.
        self.fallback: _FieldPath | None = None
        if name.startswith(_EVENT_DATA):
            self.fallback = _FieldPath(_USER_DATA + name[len(_EVENT_DATA) :])
        self.parts = tuple(name.split("."))
        n = len(self.parts)
        # keys[i] lists (key, end) for every way to take parts[i:end] as one (dotted) key.
        self.keys = [
            [(".".join(self.parts[i:end]), end) for end in range(n, i, -1)] for i in range(n)
        ]

    def resolve(self, event: Mapping[str, Any]) -> list[Any]:
        """Every value found at this path (several if the event spells it several ways)."""
        out: list[Any] = []
        self._walk(event, 0, out)
        if not out and self.fallback is not None:
            out = self.fallback.resolve(event)
            if not out:
                out = _spaced_data(event, self.name[len(_EVENT_DATA) :])
        return out

    def _walk(self, obj: Any, start: int, out: list[Any]) -> None:
        if isinstance(obj, Mapping):
            n = len(self.parts)
            for key, end in self.keys[start]:
                if key in obj:
                    if end == n:
                        out.append(obj[key])
                    else:
                        self._walk(obj[key], end, out)
        elif isinstance(obj, list | tuple):
            for item in obj:
                self._walk(item, start, out)


_PATHS: dict[str, _FieldPath] = {}
_SCALARS = frozenset({str, int, float, bool})
_NO_KEYS: frozenset[str] = frozenset()
_EVENT_DATA = "winlog.event_data."
_USER_DATA = "winlog.user_data."


def _spaced_data(event: Mapping[str, Any], name: str) -> list[Any]:
    """EventData names with spaces (Defender's ``Source Name``) as Sigma spells them
    (``SourceName``)."""
    winlog = event.get("winlog")
    data = winlog.get("event_data") if isinstance(winlog, Mapping) else None
    if not isinstance(data, Mapping):
        return []
    return [v for k, v in data.items() if " " in k and k.replace(" ", "") == name]


def _path(name: str) -> _FieldPath:
    path = _PATHS.get(name)
    if path is None:
        path = _PATHS[name] = _FieldPath(name)
    return path


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list | tuple):
            yield from _flatten(list(value))
        elif value is not None:
            yield value


def _flatten_event(
    obj: Mapping[str, Any], prefix: str, flat: dict[str, list[Any]], inner: set[str]
) -> None:
    """One walk of the event: dotted path → values found there (``flat``), and the paths of
    the objects on the way (``inner``). A key may itself be dotted; a list of objects is walked
    under its own path, as :class:`_FieldPath` resolves it."""
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        path = prefix + key
        kind = type(value)
        if kind is str or kind is int:
            found = flat.get(path)
            if found is None:
                flat[path] = [value]
            else:
                found.append(value)
            continue
        if kind is dict or isinstance(value, Mapping):
            inner.add(path)
            _flatten_event(value, path + ".", flat, inner)
            continue
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, Mapping):
                    inner.add(path)
                    _flatten_event(item, path + ".", flat, inner)
        found = flat.get(path)
        if found is None:
            flat[path] = [value]
        else:
            found.append(value)


class EventView:
    """One event as the compiled predicates see it, with per-event caches.

    Every rule evaluated on the same event shares the field lookups and their lowercase,
    numeric and IP forms, so a field used by a hundred rules is resolved once.
    """

    __slots__ = (
        "_flat",
        "_inner",
        "_ips",
        "_keys",
        "_leaves",
        "_leaves_lower",
        "_lower",
        "_numbers",
        "_paths",
        "_raw",
        "_text",
        "_values",
        "event",
    )

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        self._raw: dict[str, list[Any]] = {}
        self._values: dict[str, tuple[Any, ...]] = {}
        self._text: dict[str, tuple[str, ...]] = {}
        self._lower: dict[str, tuple[str, ...]] = {}
        self._numbers: dict[str, tuple[int | float, ...]] = {}
        self._ips: dict[str, tuple[IPAddress, ...]] = {}
        self._keys: dict[str, set[str] | frozenset[str]] = {}
        self._paths: set[str] | None = None
        self._flat: dict[str, list[Any]] | None = None
        self._inner: set[str] = set()
        self._leaves: tuple[str, ...] | None = None
        self._leaves_lower: tuple[str, ...] | None = None

    def _flattened(self) -> dict[str, list[Any]]:
        flat = self._flat
        if flat is None:
            flat = self._flat = {}
            _flatten_event(self.event, "", flat, self._inner)
        return flat

    def _resolved(self, name: str) -> list[Any]:
        raw = self._raw.get(name)
        if raw is None:
            raw = self._flattened().get(name)
            if raw is None:
                if name in self._inner or name.startswith(_EVENT_DATA):
                    # An object (not a leaf), or Windows data kept in UserData / spelled with
                    # spaces: the path walk knows those ways.
                    raw = _path(name).resolve(self.event)
                else:
                    raw = []
            self._raw[name] = raw
        return raw

    def present(self, name: str) -> bool:
        """The field is in the event (even with a null value)."""
        return bool(self._resolved(name))

    def values(self, name: str) -> tuple[Any, ...]:
        """The field's non-null values, lists flattened."""
        values = self._values.get(name)
        if values is None:
            raw = self._resolved(name)
            if not raw:
                values = ()
            elif len(raw) == 1 and type(raw[0]) in _SCALARS:
                values = (raw[0],)  # the common case: one plain value
            else:
                values = tuple(_flatten(raw))
            self._values[name] = values
        return values

    def text(self, name: str) -> tuple[str, ...]:
        """The text of the field's scalar values (what string tests compare)."""
        text = self._text.get(name)
        if text is None:
            values = self.values(name)
            if len(values) == 1 and type(values[0]) is str:
                text = values
            else:
                found = (_text(v) for v in values)
                text = tuple(t for t in found if t is not None)
            self._text[name] = text
        return text

    def lower(self, name: str) -> tuple[str, ...]:
        lower = self._lower.get(name)
        if lower is None:
            text = self.text(name)
            lower = (text[0].lower(),) if len(text) == 1 else tuple(t.lower() for t in text)
            self._lower[name] = lower
        return lower

    def numbers(self, name: str) -> tuple[int | float, ...]:
        numbers = self._numbers.get(name)
        if numbers is None:
            found = (_number(v) for v in self.values(name))
            numbers = self._numbers[name] = tuple(n for n in found if n is not None)
        return numbers

    def ips(self, name: str) -> tuple[IPAddress, ...]:
        ips = self._ips.get(name)
        if ips is None:
            found = (_ip(t) for t in self.text(name))
            ips = self._ips[name] = tuple(ip for ip in found if ip is not None)
        return ips

    def index_keys(self, name: str) -> set[str] | frozenset[str]:
        """The spellings under which the field's values are looked up in the rule index."""
        keys = self._keys.get(name)
        if keys is None:
            values = self.values(name)
            if not values:
                keys = _NO_KEYS
            elif len(values) == 1 and type(values[0]) is int:
                keys = {str(values[0])}
            else:
                keys = set(self.lower(name))
                keys.update(_number_key(n) for n in self.numbers(name))
            self._keys[name] = keys
        return keys

    def paths(self) -> set[str]:
        """Every dotted field name present in the event (however its keys are split).

        ``winlog.user_data.X`` also counts as ``winlog.event_data.X`` (see :class:`_FieldPath`).
        """
        if self._paths is None:
            paths = set(self._flattened())
            paths.update(self._inner)
            paths.update(
                [
                    _EVENT_DATA + p[len(_USER_DATA) :].replace(" ", "")
                    if p.startswith(_USER_DATA)
                    else p.replace(" ", "")
                    for p in paths
                    if p.startswith(_USER_DATA) or (" " in p and p.startswith(_EVENT_DATA))
                ]
            )
            self._paths = paths
        return self._paths

    def leaves(self, lowered: bool) -> tuple[str, ...]:
        """Text of every scalar value in the event (keyword search)."""
        if self._leaves is None:
            found = (
                _text(v) for v in _flatten([v for vs in self._flattened().values() for v in vs])
            )
            self._leaves = tuple(t for t in found if t is not None)
        if not lowered:
            return self._leaves
        if self._leaves_lower is None:
            self._leaves_lower = tuple(t.lower() for t in self._leaves)
        return self._leaves_lower


def _view(event: Mapping[str, Any] | EventView) -> EventView:
    return event if isinstance(event, EventView) else EventView(event)


# ---------------------------------------------------------------------------------------------
# Compiled rule


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """A Sigma detection rule ready to evaluate against events (compared by identity)."""

    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    logsource: tuple[str | None, str | None, str | None]
    """(category, product, service)"""
    path: Path | None
    custom: Mapping[str, Any]
    """Top-level keys Sigma does not define (pySigma's ``custom_attributes``), e.g. ``group_by``."""
    predicate: Predicate = field(repr=False)
    required: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    """Fields the event must carry with one of these values (index keys) for a match."""
    fields: frozenset[str] = frozenset()
    """Every event field the rule reads (after field mapping)."""
    needs: frozenset[str] = frozenset()
    """Fields that must be present in the event for a match."""
    sigma_rule: SigmaRule | None = field(default=None, repr=False)
    lits: frozenset[tuple[str, str]] | None = field(default=None, repr=False)
    """(field, lowercase literal) pairs one of which occurs in every matching event."""
    route: str = ""
    """Which events this copy of the rule reads (mapping: ``sysmon``, ``security``, ``native``…)."""

    def matches(self, event: Mapping[str, Any] | EventView) -> bool:
        return self.predicate(_view(event))


# ---------------------------------------------------------------------------------------------
# Compilation

# Rough relative evaluation costs, used to evaluate cheap conjuncts first.
_COST_EXACT = 1
_COST_AFFIX = 2
_COST_CONTAINS = 3
_COST_GLOB = 5
_COST_REGEX = 10
_COST_KEYWORD = 20

_SimpleKey = tuple[str, bool, str]  # (field, cased, kind)


@dataclass
class _Node:
    pred: Predicate
    cost: int
    required: dict[str, frozenset[str]] = field(default_factory=dict)
    fields: frozenset[str] = frozenset()
    # Fields that must be present in the event for the node to be true.
    present: frozenset[str] = frozenset()
    # Set on plain string tests so that OR-ed siblings on the same field can be merged.
    simple: _SimpleKey | None = None
    literal: str = ""
    # Literal prefilter: if the node is true, one of these (field, lowercase text) pairs occurs
    # as a substring of that field's lowercase text ("*": of any value). None: no such promise.
    lits: frozenset[tuple[str, str]] | None = None


# Fields whose values route rules (channel, event id, dataset): they are in nearly every event
# of their kind, so as prefilter literals they would select whole log sources.
_ROUTE_FIELDS = frozenset(
    {"winlog.channel", "winlog.event_id", "winlog.provider_name", "event.dataset", "event.module"}
)
KEYWORD_FIELD = "*"


def _longest_literal(s: SigmaString) -> str:
    """The longest literal run of a SigmaString, lowercased ("" when it has none)."""
    runs = [p for p in _string_parts(s, lowered=True) if isinstance(p, str)]
    best = max(runs, key=len, default="")
    # Python lowercases a final sigma by context; a literal could then miss its own value.
    return "" if "σ" in best or "ς" in best else best


def _lits(name: str, literals: Sequence[str]) -> frozenset[tuple[str, str]] | None:
    if name in _ROUTE_FIELDS or not literals or any(not lit for lit in literals):
        return None
    return frozenset((name, lit) for lit in literals)


def _lit_cost(lits: frozenset[tuple[str, str]]) -> float:
    """How often the literals are expected to occur: short ones (".exe", "/c") everywhere."""
    return sum(
        (4.0 if name == KEYWORD_FIELD else 1.0) / min(len(lit), 16) ** 2 for name, lit in lits
    )


def _string_parts(s: SigmaString, lowered: bool) -> list[str | SpecialChars]:
    """Literal runs and wildcards of a SigmaString (consecutive ``*`` collapsed)."""
    parts: list[str | SpecialChars] = []
    for part in s.s:
        if isinstance(part, Placeholder):
            raise UnsupportedRule(
                f"placeholder '%{part.name}%' (modifier 'expand') not supported: "
                "no placeholder values are configured"
            )
        if isinstance(part, str):
            text = part.lower() if lowered else part
            if parts and isinstance(parts[-1], str):
                parts[-1] += text
            elif text:
                parts.append(text)
        elif part is SpecialChars.WILDCARD_MULTI:
            if not parts or parts[-1] is not SpecialChars.WILDCARD_MULTI:
                parts.append(part)
        else:
            parts.append(part)
    return parts


def _glob_regex(parts: list[str | SpecialChars], cased: bool) -> re.Pattern[str]:
    pattern = "".join(
        re.escape(p) if isinstance(p, str) else (".*" if p is SpecialChars.WILDCARD_MULTI else ".")
        for p in parts
    )
    return re.compile(pattern, re.DOTALL if cased else re.DOTALL | re.IGNORECASE)


def _star_glob(segments: list[str], anchored_start: bool, anchored_end: bool) -> StrTest:
    """Match ``a*b*c`` (only ``*`` wildcards) by ordered substring search, no regex."""
    head = segments[0] if anchored_start else ""
    tail = segments[-1] if anchored_end else ""
    middle = segments[1 if anchored_start else 0 : len(segments) - 1 if anchored_end else None]

    def one(v: str) -> bool:
        if not v.startswith(head):
            return False
        pos = len(head)
        end = len(v) - len(tail)
        if end < pos or not v.endswith(tail):
            return False
        for seg in middle:
            i = v.find(seg, pos, end)
            if i < 0:
                return False
            pos = i + len(seg)
        return True

    return lambda vals: any(one(v) for v in vals)


def _text_test(kind: str, needle: str | tuple[str, ...]) -> StrTest:
    """A prefix/suffix/contains test over a field's texts; ``needle`` may be several (OR).

    Plain loops rather than ``any(...)``: these run for every candidate rule on every event, and
    a generator per call costs more than the test itself.
    """
    if kind == "prefix":

        def test(vals: tuple[str, ...]) -> bool:
            for v in vals:  # noqa: SIM110
                if v.startswith(needle):
                    return True
            return False

    elif kind == "suffix":

        def test(vals: tuple[str, ...]) -> bool:
            for v in vals:  # noqa: SIM110
                if v.endswith(needle):
                    return True
            return False

    elif isinstance(needle, str):

        def test(vals: tuple[str, ...]) -> bool:
            for v in vals:  # noqa: SIM110
                if needle in v:
                    return True
            return False

    else:

        def test(vals: tuple[str, ...]) -> bool:
            for v in vals:
                for sub in needle:
                    if sub in v:
                        return True
            return False

    return test


def _string_test(s: SigmaString, cased: bool) -> tuple[StrTest, int, str, str]:
    """(test over the field's texts, cost, kind, literal) for one SigmaString.

    ``kind`` is exact/prefix/suffix/contains when the value is one literal with ``*`` at one or
    both ends (those can be merged across an OR); otherwise ``"glob"``/``"any"``/``"regex"``.
    """
    parts = _string_parts(s, lowered=not cased)
    multi = SpecialChars.WILDCARD_MULTI
    if any(p is SpecialChars.WILDCARD_SINGLE for p in parts):
        rx = _glob_regex(parts, cased)
        return (lambda vals: any(rx.fullmatch(v) for v in vals)), _COST_GLOB, "regex", ""
    if not parts:
        return (lambda vals: "" in vals), _COST_EXACT, "exact", ""
    if parts == [multi]:
        return (lambda vals: bool(vals)), _COST_EXACT, "any", ""
    literals = [p for p in parts if isinstance(p, str)]
    if len(literals) > 1:
        glob = _star_glob(literals, parts[0] is not multi, parts[-1] is not multi)
        return glob, _COST_GLOB, "glob", ""
    lit = literals[0]
    if len(parts) == 1:
        return (lambda vals: lit in vals), _COST_EXACT, "exact", lit
    if len(parts) == 3:
        return _text_test("contains", lit), _COST_CONTAINS, "contains", lit
    kind = "prefix" if parts[1] is multi else "suffix"
    return _text_test(kind, lit), _COST_AFFIX, kind, lit


def _merge_simple(key: _SimpleKey, literals: list[str]) -> _Node:
    """One test for ``field: [a, b, c]`` style lists of the same kind (OR of the literals)."""
    name, cased, kind = key
    get: Callable[[EventView, str], tuple[str, ...]] = EventView.text if cased else EventView.lower
    fields = frozenset({name})
    lits = _lits(name, [lit.lower() for lit in literals])
    if kind == "exact":
        options = frozenset(literals)
        return _Node(
            lambda ev: not options.isdisjoint(get(ev, name)),
            _COST_EXACT,
            {name: frozenset(lit.lower() for lit in literals)},
            fields,
            fields,
            lits=lits,
        )
    test = _text_test(kind, tuple(literals))
    cost = _COST_CONTAINS + len(literals) // 8 if kind == "contains" else _COST_AFFIX
    return _Node(lambda ev: test(get(ev, name)), cost, {}, fields, fields, lits=lits)


_COMPARE: dict[CompareOperators, Callable[[Any, Any], bool]] = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}

_RE_FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL}


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    if value.regexp.contains_placeholder():
        raise UnsupportedRule("placeholder (modifier 'expand') in a regular expression")
    flags = 0
    for flag in value.flags:
        flags |= _RE_FLAGS[flag.name]
    try:
        return re.compile(str(value.regexp), flags)
    except re.error as e:
        raise UnsupportedRule(f"regular expression {str(value.regexp)!r} invalid: {e}") from e


class _Compiler:
    def __init__(self, field_map: Callable[[str], str] | None) -> None:
        self.field_map = field_map

    def field(self, name: str) -> str:
        return self.field_map(name) if self.field_map else name

    def node(self, cond: Any) -> _Node:
        if cond is None:
            raise UnsupportedRule("condition refers to no detection (e.g. '1 of x*' matches none)")
        if isinstance(cond, ConditionAND):
            return self.and_(cond.args)
        if isinstance(cond, ConditionOR):
            return self.or_(cond.args)
        if isinstance(cond, ConditionNOT):
            child = self.node(cond.args[0])
            pred = child.pred
            return _Node(lambda ev: not pred(ev), child.cost, {}, child.fields)
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            return self.value(self.field(cond.field), cond.value)
        if isinstance(cond, ConditionValueExpression):
            return self.keyword(cond.value)
        raise UnsupportedRule(f"condition element {type(cond).__name__} not supported")

    def and_(self, args: Sequence[Any]) -> _Node:
        children = sorted((self.node(a) for a in args), key=lambda n: n.cost)
        preds = tuple(c.pred for c in children)
        required: dict[str, frozenset[str]] = {}
        for child in children:
            for name, keys in child.required.items():
                if name not in required or len(keys) < len(required[name]):
                    required[name] = keys
        fields = frozenset().union(*(c.fields for c in children))
        present = frozenset().union(*(c.present for c in children))
        cost = sum(c.cost for c in children)
        # Any one child's literals are a promise for the whole AND: take the rarest.
        lits = min((c.lits for c in children if c.lits is not None), key=_lit_cost, default=None)
        if len(preds) == 2:
            a, b = preds
            return _Node(lambda ev: a(ev) and b(ev), cost, required, fields, present, lits=lits)
        return _Node(
            lambda ev: all(p(ev) for p in preds), cost, required, fields, present, lits=lits
        )

    def or_(self, args: Sequence[Any]) -> _Node:
        children = [self.node(a) for a in args]
        return _or_nodes(children)

    def value(self, name: str, value: Any) -> _Node:
        """The test for ``field: value`` (one value of a detection item)."""
        node = self._value(name, value)
        absent_ok = isinstance(value, SigmaNull) or (
            isinstance(value, SigmaExists) and not value.exists
        )
        if not absent_ok and not isinstance(value, SigmaExpansion):
            node.present = node.fields
        return node

    def _value(self, name: str, value: Any) -> _Node:
        fields = frozenset({name})
        if isinstance(value, SigmaExpansion):
            return _or_nodes([self.value(name, v) for v in value.values])
        if isinstance(value, SigmaString):
            cased = isinstance(value, SigmaCasedString)
            test, cost, kind, literal = _string_test(value, cased)
            get = EventView.text if cased else EventView.lower
            node = _Node(lambda ev: test(get(ev, name)), cost, {}, fields)
            node.lits = _lits(name, [_longest_literal(value)])
            if kind in ("exact", "prefix", "suffix", "contains"):
                node.simple = (name, cased, kind)
                node.literal = literal
            if kind == "exact":
                node.required = {name: frozenset({literal.lower()})}
            return node
        if isinstance(value, SigmaTimestampPart):
            part = value.timestamp_part.name.lower()
            raise UnsupportedRule(f"modifier '{part}' (time part of a date) not supported")
        if isinstance(value, SigmaNumber):
            number = value.number
            return _Node(
                lambda ev: number in ev.numbers(name),
                _COST_EXACT,
                {name: frozenset({_number_key(number)})},
                fields,
            )
        if isinstance(value, SigmaBool):
            wanted = value.boolean
            text = "true" if wanted else "false"

            def is_bool(ev: EventView) -> bool:
                for v in ev.values(name):
                    if isinstance(v, bool):
                        if v is wanted:
                            return True
                    elif isinstance(v, str) and v.strip().lower() == text:
                        return True
                return False

            return _Node(is_bool, _COST_EXACT, {}, fields)
        if isinstance(value, SigmaNull):
            return _Node(lambda ev: not ev.values(name), _COST_EXACT, {}, fields)
        if isinstance(value, SigmaExists):
            if value.exists:
                return _Node(lambda ev: ev.present(name), _COST_EXACT, {}, fields)
            return _Node(lambda ev: not ev.present(name), _COST_EXACT, {}, fields)
        if isinstance(value, SigmaRegularExpression):
            rx = _regex(value)
            return _Node(
                lambda ev: any(rx.search(v) for v in ev.text(name)), _COST_REGEX, {}, fields
            )
        if isinstance(value, SigmaCIDRExpression):
            network = value.network
            return _Node(
                lambda ev: any(
                    ip.version == network.version and ip in network for ip in ev.ips(name)
                ),
                _COST_AFFIX,
                {},
                fields,
            )
        if isinstance(value, SigmaCompareExpression):
            compare = _COMPARE[value.op]
            bound = value.number.number
            return _Node(
                lambda ev: any(compare(n, bound) for n in ev.numbers(name)),
                _COST_EXACT,
                {},
                fields,
            )
        if isinstance(value, SigmaFieldReference):
            return self.fieldref(name, value)
        if isinstance(value, SigmaQueryExpression):
            raise UnsupportedRule("query expression values (backend-specific) not supported")
        raise UnsupportedRule(f"value type {type(value).__name__} not supported")

    def fieldref(self, name: str, value: SigmaFieldReference) -> _Node:
        other = self.field(value.field)
        if value.starts_with and value.ends_with:
            relate: Callable[[str, str], bool] = lambda a, b: b in a  # noqa: E731
        elif value.starts_with:
            relate = str.startswith
        elif value.ends_with:
            relate = str.endswith
        else:
            relate = operator.eq

        def refers(ev: EventView) -> bool:
            mine, theirs = ev.lower(name), ev.lower(other)
            if any(relate(a, b) for a in mine for b in theirs):
                return True
            # Numbers spelled differently (4624 vs 4624.0) are still the same value.
            if relate is operator.eq:
                nums = ev.numbers(other)
                return any(n in nums for n in ev.numbers(name))
            return False

        return _Node(refers, _COST_AFFIX, {}, frozenset({name, other}))

    def keyword(self, value: Any) -> _Node:
        """A value without a field: searched as a substring of every scalar in the event."""
        if isinstance(value, SigmaExpansion):
            return _or_nodes([self.keyword(v) for v in value.values])
        if isinstance(value, SigmaString):
            cased = isinstance(value, SigmaCasedString)
            contained = value
            if not contained.startswith(SpecialChars.WILDCARD_MULTI):
                contained = SpecialChars.WILDCARD_MULTI + contained
            if not contained.endswith(SpecialChars.WILDCARD_MULTI):
                contained = contained + SpecialChars.WILDCARD_MULTI
            test, _, _, _ = _string_test(contained, cased)
            lowered = not cased
            node = _Node(lambda ev: test(ev.leaves(lowered)), _COST_KEYWORD)
            node.lits = _lits(KEYWORD_FIELD, [_longest_literal(value)])
            return node
        if isinstance(value, SigmaRegularExpression):
            rx = _regex(value)
            return _Node(lambda ev: any(rx.search(v) for v in ev.leaves(False)), _COST_KEYWORD * 2)
        kind = type(value).__name__
        raise UnsupportedRule(f"keyword (value without a field) of type {kind} not supported")


def _or_nodes(children: list[_Node]) -> _Node:
    """OR of nodes, merging plain string tests on the same field into one set/tuple test."""
    if not children:
        return _Node(lambda ev: False, 0)
    groups: dict[_SimpleKey, list[_Node]] = defaultdict(list)
    merged: list[_Node] = []
    for child in children:
        if child.simple is not None:
            groups[child.simple].append(child)
        else:
            merged.append(child)
    for key, nodes in groups.items():
        if len(nodes) == 1:
            merged.extend(nodes)
        else:
            merged.append(_merge_simple(key, [n.literal for n in nodes]))
    if len(merged) == 1:
        return merged[0]
    merged.sort(key=lambda n: n.cost)
    preds = tuple(n.pred for n in merged)
    # A field is required by the OR only if every branch requires it.
    required: dict[str, frozenset[str]] = {}
    common = set(merged[0].required).intersection(*(n.required for n in merged[1:]))
    for name in common:
        required[name] = frozenset().union(*(n.required[name] for n in merged))
    fields = frozenset().union(*(n.fields for n in merged))
    present = merged[0].present.intersection(*(n.present for n in merged[1:]))
    cost = sum(n.cost for n in merged)
    # An OR promises a literal only if every branch does (the union of their literals).
    lits: frozenset[tuple[str, str]] | None = None
    if all(n.lits is not None for n in merged):
        lits = frozenset().union(*(n.lits for n in merged if n.lits is not None))
    if len(preds) == 2:
        a, b = preds
        return _Node(lambda ev: a(ev) or b(ev), cost, required, fields, present, lits=lits)
    return _Node(lambda ev: any(p(ev) for p in preds), cost, required, fields, present, lits=lits)


def _detection_items(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _detection_items(item)
        else:
            yield item


def _check_modifiers(rule: SigmaRule) -> None:
    """Reject modifiers whose result pySigma cannot give exactly.

    - ``|re|startswith`` (or ``endswith``) only appends ``.*`` to the expression, which anchors
      nothing when a regular expression is searched rather than fully matched;
    - ``|utf16`` prepends the byte-order mark as a character, so a following ``|base64``
      encodes it as UTF-8 (EF BB BF) instead of FF FE and the value can never match.
    """
    for detection in rule.detection.detections.values():
        for item in _detection_items(detection):
            if SigmaUTF16Modifier in item.modifiers:
                raise UnsupportedRule(
                    "modifier 'utf16' not supported: pySigma encodes its byte-order mark as "
                    "UTF-8 (EF BB BF) instead of FF FE"
                )
            if SigmaRegularExpressionModifier not in item.modifiers:
                continue
            for modifier, name in (
                (SigmaStartswithModifier, "startswith"),
                (SigmaEndswithModifier, "endswith"),
            ):
                if modifier in item.modifiers:
                    raise UnsupportedRule(f"modifier '{name}' combined with 're' not supported")


def _rule_id(rule: SigmaRule, path: Path | None) -> str:
    if rule.id is not None:
        return str(rule.id)
    if rule.name:
        return rule.name
    if path is not None:
        return str(path)
    return rule.title


def compile_rule(
    rule: SigmaRule,
    *,
    field_map: Callable[[str], str] | None = None,
    path: Path | None = None,
    route: str = "",
) -> CompiledRule:
    """Compile one pySigma rule into a :class:`CompiledRule`.

    ``field_map`` renames every field the rule reads (e.g. Sigma's Windows names to ECS).
    Raises :class:`UnsupportedRule` with the reason when the rule cannot be matched exactly.
    """
    if path is None and rule.source is not None:
        path = Path(rule.source.path)
    rule_id = _rule_id(rule, path)
    location = Location(path) if path is not None else None
    try:
        if rule.errors:
            reasons = "; ".join(str(e.args[0]) if e.args else type(e).__name__ for e in rule.errors)
            raise UnsupportedRule(f"rule did not load cleanly: {reasons}")
        if isinstance(rule.detection, EmptySigmaDetections):
            raise UnsupportedRule("rule has no detection")
        _check_modifiers(rule)
        try:
            conditions = [c.parse() for c in rule.detection.parsed_condition]
        except SigmaError as e:
            reason = str(e.args[0]) if e.args else type(e).__name__
            raise UnsupportedRule(f"invalid condition: {reason}") from e
        compiler = _Compiler(field_map)
        root = _or_nodes([compiler.node(c) for c in conditions])
    except UnsupportedRule as e:
        raise UnsupportedRule(e.reason, location, rule_id) from e.__cause__

    logsource = rule.logsource
    return CompiledRule(
        id=rule_id,
        title=rule.title,
        level=str(rule.level) if rule.level is not None else "",
        tags=tuple(str(t) for t in rule.tags),
        logsource=(logsource.category, logsource.product, logsource.service),
        path=path,
        custom=MappingProxyType(dict(rule.custom_attributes)),
        predicate=root.pred,
        required=MappingProxyType(dict(root.required)),
        fields=root.fields,
        needs=root.present,
        sigma_rule=rule,
        lits=root.lits,
        route=route,
    )


@dataclass
class CompileReport:
    """What happened to each loaded rule: compiled, or unsupported with the reason.

    A rule mapped to several kinds of events (docs/decisions/0003: ``process_creation`` is Sysmon
    event 1 and Security event 4688) compiles to one :class:`CompiledRule` per route; all of them
    are in ``compiled``. A route that cannot be compiled while another can is in ``partial``.
    """

    compiled: list[CompiledRule] = field(default_factory=list)
    unsupported: list[tuple[str, Path | None, str]] = field(default_factory=list)
    """(rule id, path, reason)"""
    partial: list[tuple[str, Path | None, str]] = field(default_factory=list)
    """(rule id, path, "route: reason") for routes left out of a rule that still compiled"""

    def reasons(self) -> Counter[str]:
        """How many rules were left out for each reason."""
        return Counter(reason for _, _, reason in self.unsupported)

    @property
    def compiled_ids(self) -> list[str]:
        """The distinct ids of the rules that compiled (in order)."""
        return list(dict.fromkeys(r.id for r in self.compiled))


def _compile_mapped(
    loaded: LoadedRule, placeholders: Mapping[str, Sequence[str]] | None
) -> tuple[list[CompiledRule], list[str]]:
    """Every route of one rule compiled; the reasons of the routes that failed."""
    from detections.sigma.mapping import UnmappedLogsource, route_variants

    try:
        variants, failed = route_variants(loaded.rule, placeholders)
    except UnmappedLogsource as e:
        raise UnsupportedRule(e.reason) from e
    compiled: list[CompiledRule] = []
    for variant in variants:
        try:
            compiled.append(compile_rule(variant.rule, path=loaded.path, route=variant.route))
        except UnsupportedRule as e:
            failed.append(f"{variant.route}: {e.reason}")
    if not compiled:
        raise UnsupportedRule("; ".join(failed))
    return compiled, failed


class _Literals:
    """Rules filed under their literals: one Aho-Corasick automaton per field."""

    __slots__ = ("automata", "fields", "keyword", "rules")

    def __init__(self, rules: Sequence[CompiledRule], ids: Sequence[int]) -> None:
        import ahocorasick

        by_field: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i in ids:
            for name, lit in rules[i].lits or ():
                by_field[name][lit].append(i)
        self.rules: list[tuple[int, ...]] = []
        """literal number → the rules filed under it"""
        self.automata: dict[str, Any] = {}
        self.keyword: Any = None
        for name, table in by_field.items():
            automaton = ahocorasick.Automaton()
            for lit, rule_ids in table.items():
                automaton.add_word(lit, len(self.rules))
                self.rules.append(tuple(rule_ids))
            automaton.make_automaton()
            if name == KEYWORD_FIELD:
                self.keyword = automaton
            else:
                self.automata[name] = automaton
        self.fields = frozenset(self.automata)

    def scan(self, ev: EventView, found: set[int]) -> None:
        """Add to ``found`` the rules one of whose literals occurs in the event."""
        hits: set[int] = set()
        if self.fields:
            automata = self.automata
            for name in self.fields.intersection(ev.paths()):
                scan = automata[name].iter
                for value in ev.lower(name):
                    hits.update(map(_second, scan(value)))
        if self.keyword is not None:
            scan = self.keyword.iter
            for value in ev.leaves(True):
                hits.update(map(_second, scan(value)))
        rules = self.rules
        for lit in hits:
            found.update(rules[lit])

    def __len__(self) -> int:
        return len(self.rules)


class _Bucket:
    """The rules filed under one value of an index field: plain ones run whenever the event has
    the value; the others only when one of their literals occurs too."""

    __slots__ = ("literals", "plain")

    def __init__(self) -> None:
        self.plain: list[int] = []
        self.literals: list[int] | _Literals = []


class Matcher:
    """Evaluates many compiled rules against one event at a time.

    Prefilters decide which rules an event evaluates (docs/decisions/0003):

    - value index (routing): a rule that needs an exact value of some field at its top AND
      level (``winlog.event_id: 1`` and ``winlog.channel: …Sysmon…`` added by the field mapping,
      ``event.dataset: fortinet.fortigate``) is filed under those values;
    - literal prefilter: within that (or globally, for rules without such a value), a rule
      whose match implies that one of its literal strings occurs in some field
      (``CommandLine|contains: mimikatz``, ``Image|endswith: \\rundll32.exe``) is filed under
      its rarest such literals, in one Aho-Corasick automaton per field; the event's lowercase
      values are scanned once per field and only rules whose literal occurred are evaluated;
    - presence index: a rule with neither, but with a positive test on some field, runs only on
      events that have that field.

    Rules with none of these (only negations, numbers or regular expressions) run on every
    event. Results are in the order the rules were given, and equal evaluating every rule on
    its own.
    """

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules: list[CompiledRule] = list(rules)
        self._index: dict[str, dict[str, _Bucket]] = {}
        self._by_presence: dict[str, list[int]] = {}
        self._unindexed: list[int] = []
        usage = Counter(name for rule in self.rules for name in rule.required)
        bucket = Counter(
            (name, key)
            for rule in self.rules
            for name, keys in rule.required.items()
            for key in keys
        )
        needed = Counter(name for rule in self.rules for name in rule.needs)

        def crowd(rule: CompiledRule, name: str) -> tuple[int, int, str]:
            # How many rules share this rule's keys on that field: the fewer, the more selective
            # the lookup. Ties go to the field most rules use, so an event does few lookups.
            return (sum(bucket[name, k] for k in rule.required[name]), -usage[name], name)

        unrouted: list[int] = []
        for i, rule in enumerate(self.rules):
            if rule.required:
                # Route on the channel / event id / dataset when the rule names one: an event
                # then looks up a handful of fields, and each bucket holds one log source.
                routes = [f for f in rule.required if f in _ROUTE_FIELDS] or list(rule.required)
                name = min(routes, key=partial(crowd, rule))
                table = self._index.setdefault(name, {})
                for key in rule.required[name]:
                    slot = table.setdefault(key, _Bucket())
                    target = slot.plain if rule.lits is None else slot.literals
                    assert isinstance(target, list)
                    target.append(i)
            elif rule.lits is not None:
                unrouted.append(i)
            elif rule.needs:
                # The field fewest rules need is the one least likely to be in an event.
                name = min(rule.needs, key=lambda f: (needed[f], f))
                self._by_presence.setdefault(name, []).append(i)
            else:
                self._unindexed.append(i)
        for table in self._index.values():
            for slot in table.values():
                ids = slot.literals
                assert isinstance(ids, list)
                slot.literals = _Literals(self.rules, ids)
        self._literals = _Literals(self.rules, unrouted)

    @classmethod
    def from_ruleset(
        cls,
        rs: RuleSet,
        *,
        field_map: Callable[[str], str] | None = None,
        mapping: bool = True,
        placeholders: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[Matcher, CompileReport]:
        """Compile every loaded rule; unsupported ones are listed in the report, not raised.

        With ``mapping`` (the default) each rule is first rewritten to socmon's ECS by
        :mod:`detections.sigma.mapping` (one compiled copy per route); ``mapping=False``
        compiles the rules as written (with ``field_map`` renaming fields, if given).
        """
        report = CompileReport()
        for loaded in rs.rules:
            try:
                if mapping and field_map is None:
                    compiled, failed = _compile_mapped(loaded, placeholders)
                    report.compiled.extend(compiled)
                    rule_id = compiled[0].id
                    report.partial.extend((rule_id, loaded.path, f) for f in failed)
                else:
                    report.compiled.append(
                        compile_rule(loaded.rule, field_map=field_map, path=loaded.path)
                    )
            except UnsupportedRule as e:
                rule_id = e.rule_id or _rule_id(loaded.rule, loaded.path)
                report.unsupported.append((rule_id, loaded.path, e.reason))
        return cls(report.compiled), report

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def indexed_fields(self) -> dict[str, int]:
        """Value-index field → number of rules filed under it."""
        out: dict[str, int] = {}
        for name, table in self._index.items():
            ids: set[int] = set()
            for slot in table.values():
                ids.update(slot.plain)
                if isinstance(slot.literals, _Literals):
                    ids.update(i for group in slot.literals.rules for i in group)
            out[name] = len(ids)
        return out

    @property
    def presence_fields(self) -> dict[str, int]:
        """Presence-index field → number of rules filed under it."""
        return {name: len(ids) for name, ids in self._by_presence.items()}

    @property
    def literal_count(self) -> int:
        """Rules filed under the literal prefilter (routed or not)."""
        return sum(1 for r in self.rules if r.lits is not None)

    @property
    def unindexed_count(self) -> int:
        """Rules evaluated on every event."""
        return len(self._unindexed)

    def candidates(self, event: Mapping[str, Any] | EventView) -> list[CompiledRule]:
        """The rules the prefilters cannot rule out for this event (in rule order)."""
        return [self.rules[i] for i in self._candidate_ids(_view(event))]

    def _candidate_ids(self, ev: EventView) -> list[int]:
        found: set[int] = set()
        for name, table in self._index.items():
            for key in ev.index_keys(name):
                slot = table.get(key)
                if slot is not None:
                    found.update(slot.plain)
                    literals = slot.literals
                    if literals:
                        assert isinstance(literals, _Literals)
                        literals.scan(ev, found)
        if self._literals:
            self._literals.scan(ev, found)
        if self._by_presence:
            by_presence = self._by_presence
            for path in ev.paths():
                ids = by_presence.get(path)
                if ids:
                    found.update(ids)
        if not found:
            return self._unindexed
        found.update(self._unindexed)
        return sorted(found)

    def match(self, event: Mapping[str, Any] | EventView) -> list[CompiledRule]:
        """Every rule that matches the event, in the order the rules were given."""
        ev = _view(event)
        rules = self.rules
        return [rules[i] for i in self._candidate_ids(ev) if rules[i].predicate(ev)]
