"""Every field socmon emits is an ECS field or declared in `schemas/non_ecs_fields.yaml`.

Every parser of `collectors.registry` runs, through the real pipeline (`parse_message`: sender,
ingest time, failure documents) and the real enrichment (inventory context, observer, Community
ID, threat-intel matches), on its samples: the ECS conformance corpus, the golden fixtures under
`tests/collectors/<parser>/fixtures/`, the loghub Linux / OpenSSH / Apache samples, the EVTX
corpus (the first records of each file) and journal entries. Each emitted field path is checked
against the ECS 9.4 field list (`schemas/ecs_fields.txt`); offenders are reported all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import evtx
import pytest
import yaml

from collectors.enrich import Enricher
from collectors.intel import IndicatorSet
from collectors.parsing import SourceContext
from collectors.pipeline import RawMessage, parse_message
from collectors.registry import PARSERS
from inventory import IpLookup, load_inventory
from socmon.corpus import REPO_ROOT, corpus_dir
from tests.collectors.conformance import load_cases, vendor_path
from tests.collectors.test_conformance import VENDOR_PARSERS
from tests.collectors.test_journald import KERNEL, SSHD

SCHEMAS = REPO_ROOT / "schemas"
FIXTURES = REPO_ROOT / "tests" / "collectors"
SENDER = "10.10.0.1:514"
EVTX_RECORDS_PER_FILE = 20
LOGHUB_LINES = 300
# loghub sample -> parser
LOGHUB = {"Linux/Linux_2k.log": "syslog", "OpenSSH/OpenSSH_2k.log": "linux_auth"}
LOGHUB_APACHE = "Apache/Apache_2k.log"

INVENTORY = """
units:
  - {code: so-tttt, name: Sở Thông tin và Truyền thông}
zones:
  - {name: mgmt, cidrs: [10.10.0.0/24], site: ttdl}
  - {name: private-10, cidrs: [10.0.0.0/8]}
  - {name: private-172, cidrs: [172.16.0.0/12]}
  - {name: private-192, cidrs: [192.168.0.0/16, "fd00::/8"]}
systems:
  - {code: mang-ttdl, name: Mạng trung tâm dữ liệu, level: 4, unit: so-tttt, state_secret: true}
assets:
  - {name: fw-ttdl-01, ips: [10.10.0.1], unit: so-tttt, zone: mgmt, systems: [mang-ttdl],
     kind: firewall, vendor: Fortinet, product: FortiGate}
"""
# Match every address and every name under a common TLD: each event carries threat.enrichments.
INDICATORS = """\
type,value,description,source,confidence,reference
cidr,0.0.0.0/0,every IPv4 address,socmon-test,50,https://example.org/ti
cidr,::/0,every IPv6 address,socmon-test,50,
domain,com,every .com name,socmon-test,Low,
domain,net,every .net name,socmon-test,Low,
domain,org,every .org name,socmon-test,Low,
"""


# --------------------------------------------------------------------------- the two lists


def load_ecs() -> tuple[frozenset[str], frozenset[str]]:
    """(ECS field names, fields that accept any sub-field: flattened, and object/nested fields
    with no listed sub-field such as `labels`)."""
    types: dict[str, str] = {}
    for line in (SCHEMAS / "ecs_fields.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, kind = line.split()
            types[name] = kind
    parents = {name.rsplit(".", 1)[0] for name in types if "." in name}
    open_ = {
        name
        for name, kind in types.items()
        if kind == "flattened" or (kind in ("object", "nested") and name not in parents)
    }
    return frozenset(types), frozenset(open_)


ECS, OPEN = load_ecs()


@dataclass(frozen=True)
class Declaration:
    name: str
    description: str
    owner: str

    @property
    def prefix(self) -> str | None:
        return self.name[:-2] if self.name.endswith(".*") else None

    def covers(self, path: str) -> bool:
        prefix = self.prefix
        return path.startswith(prefix + ".") if prefix else path == self.name


def load_declarations() -> list[Declaration]:
    data = yaml.safe_load((SCHEMAS / "non_ecs_fields.yaml").read_text(encoding="utf-8"))
    return [Declaration(**entry) for entry in data["fields"]]


def is_ecs(path: str) -> bool:
    if path in ECS:
        return True
    parts = path.split(".")
    return any(".".join(parts[:i]) in OPEN for i in range(1, len(parts)))


def field_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves; a list of objects contributes its objects' paths. An empty
    object is no field (Elasticsearch maps nothing for it)."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from field_paths(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        for item in value:
            if isinstance(item, Mapping):
                yield from field_paths(item, prefix)
    elif prefix:
        yield prefix


# --------------------------------------------------------------------------- samples


def samples(corpus: Path) -> Iterator[tuple[str, str, str, SourceContext]]:
    """(parser, sample id, raw message, source context) for every sample."""
    for vendor, parser in VENDOR_PARSERS.items():
        name = next(n for n, p in PARSERS.items() if p is parser)
        directory = vendor_path(vendor)
        assert directory is not None, f"corpus has no ecs-conformance/{vendor}"
        for case in load_cases(directory):
            for i, record in enumerate(case.records, 1):
                yield name, f"{vendor}/{case.file}#{i}", record, case.config.context()
    for name in PARSERS:
        for path in sorted((FIXTURES / name / "fixtures").glob("*.log")):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                yield name, f"{path.relative_to(REPO_ROOT)}#{i}", line, SourceContext()
    for rel, name in [*LOGHUB.items(), (LOGHUB_APACHE, "apache")]:
        with (corpus / "logs" / rel).open(encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(islice(f, LOGHUB_LINES), 1):
                yield name, f"logs/{rel}#{i}", line.rstrip("\n"), SourceContext()
    for path in sorted((corpus / "evtx").rglob("*.evtx")):
        records = evtx.PyEvtxParser(str(path), indent=False).records_json()
        for i, rec in enumerate(islice(records, EVTX_RECORDS_PER_FILE), 1):
            assert rec is not None
            yield "windows", f"{path.relative_to(corpus)}#{i}", rec["data"], SourceContext()
    yield "journald", "test_journald.SSHD", SSHD, SourceContext()
    yield "journald", "test_journald.KERNEL", KERNEL, SourceContext()


@dataclass
class Emitted:
    fields: dict[str, list[str]]  # field path -> the first sample ids that emitted it
    documents: dict[str, int]  # parser -> documents parsed without failure


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Emitted:
    corpus = corpus_dir()
    if corpus is None:
        pytest.skip("test corpus not found (set SOCMON_CORPUS or place shared/corpus)")
    tmp = tmp_path_factory.mktemp("schemas")
    (tmp / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    (tmp / "indicators.csv").write_text(INDICATORS, encoding="utf-8")
    enricher = Enricher(
        IpLookup(load_inventory(tmp / "inventory.yaml")),
        IndicatorSet.load(tmp / "indicators.csv"),
    )
    out = Emitted({}, {})
    for name, sample, text, ctx in samples(corpus):
        msg = RawMessage(
            source="schema-test",
            data=text.encode("utf-8"),
            received_at=1.7e9,
            sender=SENDER,
            parser=name,
            context=ctx,
        )
        doc = parse_message(msg)
        enricher.enrich(doc)
        if "_parse_failure" not in doc.get("tags", ()):
            out.documents[name] = out.documents.get(name, 0) + 1
        for path in field_paths(doc):
            ids = out.fields.setdefault(path, [])
            if len(ids) < 3:
                ids.append(sample)
    return out


# --------------------------------------------------------------------------- tests


def test_ecs_list_is_the_real_one() -> None:
    assert len(ECS) > 2500
    for name in (
        "@timestamp",
        "observer.ingress.zone",
        "network.community_id",
        "threat.enrichments.indicator.ip",
        "threat.enrichments.matched.field",
        "winlog.channel",  # not ECS: must be absent
    ):
        assert (name in ECS) == (name != "winlog.channel"), name
    assert {"labels", "log.syslog.structured_data", "container.labels"} <= OPEN
    assert "observer.ingress" not in OPEN  # an object whose sub-fields are listed


def test_declarations_are_well_formed() -> None:
    declarations = load_declarations()
    problems = []
    names = [d.name for d in declarations]
    problems += [f"{n}: declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for d in declarations:
        if not d.description.strip():
            problems.append(f"{d.name}: no description")
        if not (REPO_ROOT / d.owner).exists():
            problems.append(f"{d.name}: owner {d.owner} does not exist")
        if d.prefix is None and is_ecs(d.name):
            problems.append(f"{d.name}: is an ECS field, no declaration needed")
        if d.prefix is not None and (d.prefix in ECS or d.prefix in OPEN):
            problems.append(f"{d.name}: {d.prefix} is an ECS field")
    assert not problems, "\n".join(problems)


def test_every_parser_has_samples(emitted: Emitted) -> None:
    missing = sorted(name for name in PARSERS if not emitted.documents.get(name))
    assert not missing, f"parsers without a parsed sample: {missing}"


def test_every_emitted_field_is_ecs_or_declared(emitted: Emitted) -> None:
    declarations = load_declarations()
    offenders = {
        path: ids
        for path, ids in sorted(emitted.fields.items())
        if not is_ecs(path) and not any(d.covers(path) for d in declarations)
    }
    report = "\n".join(f"  {path}  (e.g. {', '.join(ids)})" for path, ids in offenders.items())
    assert not offenders, (
        f"{len(offenders)} fields are neither ECS nor in schemas/non_ecs_fields.yaml:\n{report}"
    )


def test_no_stale_declarations(emitted: Emitted) -> None:
    stale = [d.name for d in load_declarations() if not any(map(d.covers, emitted.fields))]
    assert not stale, f"declared but emitted by no sample: {stale}"


def test_enrichment_fields_were_exercised(emitted: Emitted) -> None:
    """The samples went through the enrichment: its fields are among those checked."""
    for path in (
        "socmon.observer.asset",
        "socmon.source.zone",
        "socmon.unit",
        "socmon.level",
        "observer.type",
        "network.community_id",
        "threat.enrichments.indicator.ip",
        "threat.enrichments.indicator.name",
        "threat.enrichments.indicator.url.domain",
        "threat.enrichments.indicator.reference",
        "threat.enrichments.matched.atomic",
        "log.source.address",
    ):
        assert path in emitted.fields, path
