"""`sor_export`: every restriction's statement of reasons in the EU DSA transparency database's
schema, checked against that database's rules (encoded here from its published API
documentation, https://transparency.dsa.ec.europa.eu/page/api-documentation, and the
validation of its API, StatementsStoreRequest), for cases of every kind; no personal data;
and `--submit` against a real loopback HTTP server that answers as the database does."""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from rights import clock, sor_templates
from rights.models import (
    AuditEvent,
    ContentItem,
    Measure,
    SorSubmission,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.services import review
from rights.services.decisions import SorInput, sor_draft
from rights.states import TargetState
from tests.engine import drive
from tests.factories import ContentItemFactory, statements_for, telegraph_items
from tests.integration.test_review_queue import staff_in
from tests.integration.test_settings import manage

pytestmark = pytest.mark.django_db

# --- The database's rules, from its published documentation -----------------------------------

VISIBILITIES = {
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
}
GROUNDS = {"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"}
CONTENT_TYPES = {
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
}
CATEGORIES = {
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
}
KEYWORDS = {
    "KEYWORD_COPYRIGHT_INFRINGEMENT",
    "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    "KEYWORD_DEFAMATION",
    "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_OTHER",
}  # the keywords that could apply to a news article's copy; the list has many more
SOURCE_TYPES = {
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
}
AUTOMATED_DECISIONS = {
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
}
EEA = {
    *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE"),
    *("IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"),
}
FIELDS = {
    "decision_visibility",
    "decision_visibility_other",
    "decision_ground",
    "decision_ground_reference_url",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "incompatible_content_illegal",
    "category",
    "category_addition",
    "category_specification",
    "category_specification_other",
    "content_type",
    "content_type_other",
    "content_language",
    "content_date",
    "application_date",
    "end_date_visibility_restriction",
    "territorial_scope",
    "decision_facts",
    "source_type",
    "source_identity",
    "automated_detection",
    "automated_decision",
    "puid",
}
LIMITS = {
    "decision_visibility_other": 500,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "decision_facts": 5000,
    "source_identity": 500,
    "puid": 500,
}
PUID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _date_between(value: Any, low: str, high: str) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return low <= value <= high


def tdb_problems(s: dict[str, Any]) -> dict[str, str]:
    """What the transparency database would refuse in one statement; empty when nothing."""
    p: dict[str, str] = {}
    for name in set(s) - FIELDS:
        p[name] = "not a field of the schema"
    vis = s.get("decision_visibility")
    if not (isinstance(vis, list) and vis and set(vis) <= VISIBILITIES):
        p["decision_visibility"] = "required: a non-empty array of the listed values"
    elif ("DECISION_VISIBILITY_OTHER" in vis) != ("decision_visibility_other" in s):
        p["decision_visibility_other"] = "required with, and only with, OTHER"
    ground = s.get("decision_ground")
    if ground not in GROUNDS:
        p["decision_ground"] = "required: one of the listed values"
    pairs = {
        "DECISION_GROUND_ILLEGAL_CONTENT": (
            "illegal_content_legal_ground",
            "illegal_content_explanation",
        ),
        "DECISION_GROUND_INCOMPATIBLE_CONTENT": (
            "incompatible_content_ground",
            "incompatible_content_explanation",
        ),
    }
    for g, names in pairs.items():
        for name in names:
            present = isinstance(s.get(name), str) and s[name].strip() != ""
            if g == ground and not present:
                p[name] = "required with this ground"
            if g != ground and name in s:
                p[name] = "only with its ground"
    if "incompatible_content_illegal" in s and s["incompatible_content_illegal"] not in {
        "Yes",
        "No",
    }:
        p["incompatible_content_illegal"] = "Yes or No"
    if s.get("category") not in CATEGORIES:
        p["category"] = "required: one of the listed values"
    spec = s.get("category_specification", [])
    if not (isinstance(spec, list) and set(spec) <= KEYWORDS):
        p["category_specification"] = "an array of the listed keywords"
    types = s.get("content_type")
    if not (isinstance(types, list) and types and set(types) <= CONTENT_TYPES):
        p["content_type"] = "required: a non-empty array of the listed values"
    scope = s.get("territorial_scope")
    if not (isinstance(scope, list) and scope and set(scope) <= EEA):
        p["territorial_scope"] = "required: EU/EEA two-letter codes"
    if not _date_between(s.get("content_date"), "2000-01-01", "2038-01-01"):
        p["content_date"] = "required: YYYY-MM-DD from 2000-01-01"
    if not _date_between(s.get("application_date"), "2020-01-01", "2038-01-01"):
        p["application_date"] = "required: YYYY-MM-DD from 2020-01-01"
    if not (isinstance(s.get("decision_facts"), str) and s["decision_facts"].strip()):
        p["decision_facts"] = "required"
    if s.get("source_type") not in SOURCE_TYPES:
        p["source_type"] = "required: one of the listed values"
    if s.get("automated_detection") not in {"Yes", "No"}:
        p["automated_detection"] = "required: Yes or No"
    if s.get("automated_decision") not in AUTOMATED_DECISIONS:
        p["automated_decision"] = "required: one of the listed values"
    if not (isinstance(s.get("puid"), str) and PUID.fullmatch(s["puid"])):
        p["puid"] = "required: letters, digits, - and _ only"
    for name, limit in LIMITS.items():
        if isinstance(s.get(name), str) and len(s[name]) > limit:
            p[name] = f"at most {limit} characters"
    return p


# --- Cases of every kind, with planted markers --------------------------------------------------

MARK = "Quuxmarker"


@dataclass
class EveryKind:
    cases: dict[str, TakedownRequest] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)


def _statement(case: TakedownRequest, kind: str, reasons: str) -> SorInput:
    draft = sor_draft(case, kind, now=clock.now())
    return SorInput(
        ground=draft.ground,
        facts=draft.facts + f" {reasons}",
        reasons=reasons,
        redress=draft.redress,
    )


def every_kind(submit: Any, outlet: Any) -> EveryKind:
    """Removed by staff, removed by a trusted automatic decision, disabled by the fail-safe,
    rejected, restored, and partly removed; names, addresses, explanations, reasons and article
    addresses all carry a marker that must never be exported or reported."""
    rita = staff_in("reviewer", "rita")
    lena = staff_in("lead", "lena")
    made = EveryKind()
    n = 0

    def items(count: int) -> list[ContentItem]:
        nonlocal n
        n += 1
        return [
            ContentItemFactory.create(outlet=outlet, slug=f"{MARK.lower()}-{n}-{k}")
            for k in range(count)
        ]

    def ask(kind: str, count: int = 1, **extra: Any) -> TakedownRequest:
        fields = {
            "name": f"Zebulon {MARK}{kind}",
            "email": f"{MARK.lower()}.{kind}@example.org",
            "explanation": f"{MARK} explanation {kind}: this is about my family",
            "urls": [i.source_url for i in items(count)],
        }
        fields.update(extra)
        made.markers += [str(fields["name"]), str(fields["email"]), str(fields["explanation"])]
        case: TakedownRequest = submit(**fields).case
        made.cases[kind] = case
        return case

    case = ask("staff")
    review.case_approve(case=case, user_id=rita.pk)
    drive(case)

    trust: dict[str, Any] = {"channel": "staff", "email_verified": True, "actor": "staff:test"}
    case = ask("trusted", email="desk@telegraph.co.uk", **trust)
    made.markers.pop(-2)  # the outlet's desk address is the outlet's, not a person's
    drive(case)

    case = ask("failsafe", basis="privacy", statements=statements_for("privacy"))
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)

    case = ask("rejected")
    reasons = f"{MARK} refused: the requester is not the owner"
    made.markers.append(reasons)
    review.case_reject(case=case, user_id=rita.pk, reasons=reasons)

    case = ask("restored", email="legal@telegraph.co.uk", **trust)
    made.markers.pop(-2)
    drive(case)
    reasons = f"{MARK} restored: removed in error"
    made.markers.append(reasons)
    review.case_restore(case=case, user_id=lena.pk, reasons=reasons)

    case = ask("partial", count=2)
    keep, gone = case.targets.order_by("pk")
    reasons = f"{MARK} partly: only the second is theirs"
    made.markers.append(reasons)
    review.case_decide(
        case=case,
        user_id=rita.pk,
        remove=[gone.pk],
        reject=[keep.pk],
        statement=_statement(case, sor_templates.PARTIAL, reasons),
    )
    drive(case)
    made.markers.append(MARK.lower())  # every article's address carries it
    return made


def exported(run_command: Any, *args: str) -> list[dict[str, Any]]:
    result = run_command("sor_export", *args)
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_fail_safe_records_its_own_statement(submit: Any, outlet: Any) -> None:
    made = every_kind(submit, outlet)
    case = made.cases["failsafe"]
    sor = StatementOfReasons.objects.get(case=case)
    target = Target.objects.get(case=case)
    assert target.state == TargetState.DISABLED
    assert sor.measure == Measure.DISABLING
    assert sor.automated_decision is True
    assert sor.decided_by_id is None
    assert sor.ground == sor_templates.FAILSAFE
    assert sor.scope == [[target.pk, "disabled"]]
    assert AuditEvent.objects.filter(
        stream=case.audit_stream(), action="case.statement_of_reasons", actor="system:enforcement"
    ).exists()


@pytest.mark.smoke
def test_every_exported_statement_is_one_the_database_accepts(
    submit: Any, outlet: Any, run_command: Any
) -> None:
    made = every_kind(submit, outlet)
    statements = exported(run_command)
    for statement in statements:
        assert tdb_problems(statement) == {}, statement
    by_case: dict[str, list[dict[str, Any]]] = {}
    for kind, case in made.cases.items():
        ids = {
            f"sor{sor}-t{t}"
            for sor in StatementOfReasons.objects.filter(case=case).values_list("pk", flat=True)
            for t in case.targets.values_list("pk", flat=True)
        }
        by_case[kind] = [s for s in statements if s["puid"] in ids]
    # One statement per restricted URL: refusals and restorations restrict nothing.
    assert {kind: len(found) for kind, found in by_case.items()} == {
        "staff": 1,
        "trusted": 1,
        "failsafe": 1,
        "rejected": 0,
        "restored": 1,  # the removal's, which happened; the restoration adds none
        "partial": 1,
    }
    assert len(statements) == 5
    staff, trusted, failsafe = by_case["staff"][0], by_case["trusted"][0], by_case["failsafe"][0]
    assert staff["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert staff["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert staff["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert staff["category"] == "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS"
    assert trusted["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert "approved automatically" in trusted["decision_facts"]
    assert failsafe["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_DISABLED"]
    assert failsafe["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert failsafe["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert failsafe["category"] == "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS"
    assert by_case["partial"][0]["puid"].endswith(
        f"-t{made.cases['partial'].targets.get(state=TargetState.REMOVED).pk}"
    )
    for statement in statements:
        assert statement["source_type"] == "SOURCE_ARTICLE_16"
        assert statement["automated_detection"] == "No"

    # puids: unique, stable from one export to the next, never the case's reference.
    assert len({s["puid"] for s in statements}) == len(statements)
    assert exported(run_command) == statements
    references = [c.reference for c in made.cases.values()]
    assert not any(ref in json.dumps(statements) for ref in references)


def test_nothing_personal_is_ever_exported(submit: Any, outlet: Any, run_command: Any) -> None:
    made = every_kind(submit, outlet)
    text = run_command("sor_export").stdout
    assert text.count("\n") == 5
    lowered = text.lower()
    for marker in made.markers:
        assert marker.lower() not in lowered, marker
    assert "@" not in text
    assert "http" not in lowered


def test_since_and_out(submit: Any, outlet: Any, run_command: Any, tmp_path: Path) -> None:
    every_kind(submit, outlet)
    today = clock.now().date()
    assert len(exported(run_command, "--since", (today + timedelta(days=2)).isoformat())) == 0
    everything = exported(run_command, "--since", (today - timedelta(days=1)).isoformat())
    assert len(everything) == 5
    out = tmp_path / "statements.jsonl"
    result = run_command("sor_export", "--out", str(out))
    assert result.code == 0
    assert result.stdout == ""
    assert [json.loads(line) for line in out.read_text().splitlines()] == everything
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--since", "yesterday"), "--since must be a date"),
        (("--since", "2026-02-30"), "--since must be a date"),
        (("--since", ""), "--since must be a date written YYYY-MM-DD"),
        (("--since", "20261130"), "--since must be a date written YYYY-MM-DD"),
        (("--since", "2026-W48-1"), "--since must be a date written YYYY-MM-DD"),
        (("--since", " 2026-11-30"), "--since must be a date written YYYY-MM-DD"),
        (("--out", "/nonexistent/dir/x.jsonl"), "no such directory"),
    ],
)
def test_bad_arguments_are_refused_plainly(
    run_command: Any, args: tuple[str, ...], words: str
) -> None:
    result = run_command("sor_export", *args)
    assert result.code == 2
    assert words in result.stderr


# --- --submit against a loopback server that answers as the database does ----------------------

TOKEN = "X|test-token-for-the-loopback-database"
DUPLICATE = "The platform identifier(s) given are not all unique within this platform."
REPEATED = "The platform identifier(s) are not all unique within this call."


@dataclass
class FakeDatabase:
    """The transparency database's multiple endpoint, as its documentation describes it."""

    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0
    # Calls (numbered from 1) that fail with 500: before storing anything, or after storing
    # the batch (the answer lost at the worst moment).
    fail_before: set[int] = field(default_factory=set)
    fail_after: set[int] = field(default_factory=set)
    # What a success answers: 201, unless a test plays a proxy that answers 200 instead.
    success: int = 201
    # An older form of the answer: a held puid named under the statement's own `statement_N`.
    per_statement: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls += 1
            call = self.calls
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return 401, {"message": "Unauthenticated."}
            if call in self.fail_before:
                return 500, {"message": "Server Error"}
            statements = json.loads(body)["statements"]
            if not 1 <= len(statements) <= 100:
                return 422, {"message": "between 1 and 100 statements"}
            # As its API does (StatementsStoreRequest, then storeMultiple): every statement
            # validated first, each one's faults under `statement_N`; then the puids, repeated
            # within the call or already held, listed in `existing_puids`. Either way none of
            # the batch is created.
            errors: dict[str, Any] = {}
            for n, statement in enumerate(statements):
                problems = {k: [v] for k, v in tdb_problems(statement).items()}
                if self.per_statement and statement.get("puid") in self.held:
                    problems["puid"] = [DUPLICATE]
                if problems:
                    errors[f"statement_{n}"] = problems
            if errors:
                return 422, {"message": "The given data was invalid.", "errors": errors}
            puids = [str(statement["puid"]) for statement in statements]
            repeated = sorted({p for p in puids if puids.count(p) > 1})
            if repeated:
                return 422, {
                    "message": REPEATED,
                    "errors": {"puid": [REPEATED], "existing_puids": repeated},
                }
            existing = [p for p in puids if p in self.held]
            if existing:
                return 422, {
                    "message": DUPLICATE,
                    "errors": {"puid": [DUPLICATE], "existing_puids": existing},
                }
            created = []
            for statement in statements:
                record = {**statement, "uuid": str(uuid.uuid4()), "platform_name": "Test"}
                self.held[statement["puid"]] = record
                created.append(record)
            if call in self.fail_after:
                return 500, {"message": "Server Error"}
            return self.success, {"statements": created}


@pytest.fixture
def database(settings: Any) -> Iterator[FakeDatabase]:
    fake = FakeDatabase()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, answer = fake.answer(self.headers, body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SOR_SUBMIT_URL = f"http://127.0.0.1:{server.server_address[1]}/api/v1/statements"
    settings.SOR_SUBMIT_TOKEN = TOKEN
    settings.SOR_SUBMIT_TIMEOUT = 5
    yield fake
    server.shutdown()
    server.server_close()


def many_restrictions(submit: Any, count: int) -> list[str]:
    """`count` removals by trusted automatic decisions, 90 URLs a case; their puids in order."""
    ids = telegraph_items(count)
    urls = [item.source_url for item in ContentItem.objects.filter(pk__in=ids).order_by("pk")]
    for start in range(0, count, 90):
        submit(
            channel="staff",
            email="desk@telegraph.co.uk",
            urls=urls[start : start + 90],
            email_verified=True,
            actor="staff:test",
        )
    return [
        f"sor{sor}-t{target}"
        for sor, target in Target.objects.filter(content_item_id__in=ids)
        .order_by("case__statements_of_reasons__decided_at", "case__statements_of_reasons", "pk")
        .values_list("case__statements_of_reasons", "pk")
    ]


@pytest.mark.parametrize("per_statement", [False, True], ids=["existing_puids", "statement_N"])
def test_submit_survives_a_failure_mid_way_and_an_existing_puid(
    submit: Any, run_command: Any, database: FakeDatabase, per_statement: bool
) -> None:
    puids = many_restrictions(submit, 250)
    database.per_statement = per_statement
    # The database already holds one of the second batch's statements (sent by an earlier run
    # whose answer never arrived); and the second call of the first run fails every time.
    database.held[puids[149]] = {"puid": puids[149]}
    database.fail_before = {2, 3, 4}

    first = run_command("sor_export", "--submit")
    assert first.code == 75, first.stderr
    assert "run again later" in first.stderr
    assert SorSubmission.objects.count() == 100  # the first batch, recorded as created
    assert set(SorSubmission.objects.values_list("puid", flat=True)) == set(puids[:100])

    second = run_command("sor_export", "--submit")
    assert second.code == 0, second.stderr
    summary = json.loads(second.stderr.strip().splitlines()[-1])
    assert summary == {"exported": 250, "created": 149, "existing": 1, "skipped": 100}
    assert set(database.held) == set(puids)
    outcomes = dict(SorSubmission.objects.values_list("puid", "outcome"))
    assert outcomes[puids[149]] == "existing"
    assert sum(1 for o in outcomes.values() if o == "created") == 249

    # Once everything is held, a third run sends nothing at all.
    calls = database.calls
    third = run_command("sor_export", "--submit")
    assert third.code == 0
    assert json.loads(third.stderr.strip().splitlines()[-1])["skipped"] == 250
    assert database.calls == calls
    assert AuditEvent.objects.filter(stream="system", action="sor.created").count() >= 3


def test_an_answer_lost_after_the_database_stored_the_batch(
    submit: Any, run_command: Any, database: FakeDatabase
) -> None:
    puids = many_restrictions(submit, 30)
    database.fail_after = {1}  # stored, then the answer is a 500
    result = run_command("sor_export", "--submit")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary == {"exported": 30, "created": 0, "existing": 30, "skipped": 0}
    assert set(database.held) == set(puids)
    assert set(SorSubmission.objects.values_list("outcome", flat=True)) == {"existing"}


def test_submit_sends_what_an_outage_held_back_whatever_since_says(
    submit: Any, run_command: Any, database: FakeDatabase
) -> None:
    puids = many_restrictions(submit, 3)
    # The daily run's `--since yesterday`, three days after these were decided.
    later = (clock.now() + timedelta(days=3)).date()
    result = run_command(
        "sor_export", "--since", (later - timedelta(days=1)).isoformat(), "--submit"
    )
    assert result.code == 0, result.stderr
    assert result.stdout == ""  # --since still limits what is written
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary == {"exported": 0, "created": 3, "existing": 0, "skipped": 0}
    assert set(database.held) == set(puids)


def test_submit_refusals_say_what_is_wrong(
    submit: Any, run_command: Any, database: FakeDatabase, settings: Any
) -> None:
    many_restrictions(submit, 3)
    settings.SOR_SUBMIT_TOKEN = "X|wrong"
    result = run_command("sor_export", "--submit")
    assert result.code == 1
    assert "SOR_SUBMIT_TOKEN" in result.stderr
    assert not SorSubmission.objects.exists()
    settings.SOR_SUBMIT_URL = ""
    result = run_command("sor_export", "--submit")
    assert result.code == 1
    assert "set SOR_SUBMIT_URL" in result.stderr


def test_only_201_created_counts_as_taken(
    submit: Any, run_command: Any, database: FakeDatabase
) -> None:
    many_restrictions(submit, 3)
    database.success = 200
    database.fail_after = set()
    result = run_command("sor_export", "--submit")
    # The first call stored them but did not say 201: the retry finds them held.
    assert result.code == 0, result.stderr
    assert set(SorSubmission.objects.values_list("outcome", flat=True)) == {"existing"}


def test_an_unreachable_database_is_a_retry_later(
    submit: Any, run_command: Any, settings: Any
) -> None:
    many_restrictions(submit, 3)
    settings.SOR_SUBMIT_URL = "http://127.0.0.1:9/api/v1/statements"  # nothing listens there
    settings.SOR_SUBMIT_TOKEN = TOKEN
    settings.SOR_SUBMIT_TIMEOUT = 2
    result = run_command("sor_export", "--submit")
    assert result.code == 75
    assert "no answer" in result.stderr
    assert not SorSubmission.objects.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SOR_SUBMIT_URL", "ftp://transparency.example/api"),
        ("SOR_SUBMIT_URL", "not a url"),
        ("SOR_SUBMIT_TIMEOUT", "301"),
        ("TRANSPARENCY_MIN_COUNT", "0"),
        ("TRANSPARENCY_CACHE_SECONDS", "-1"),
    ],
)
def test_bad_settings_stop_start_up_naming_them(name: str, value: str) -> None:
    result = manage("check", DEBUG="1", **{name: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"configuration error: {name}")


def test_the_token_never_travels_in_clear_text_to_another_host() -> None:
    result = manage(
        "check",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="rights.example",
        PUBLIC_BASE_URL="https://rights.example",
        SOR_SUBMIT_URL="http://transparency.example/api/v1/statements",
    )
    assert result.returncode == 2
    assert "SOR_SUBMIT_URL must use https" in result.stderr


def _explained(run_command: Any, case: TakedownRequest) -> dict[str, Any]:
    sor = StatementOfReasons.objects.get(case=case)
    puids = {f"sor{sor.pk}-t{t}" for t in case.targets.values_list("pk", flat=True)}
    (found,) = [s for s in exported(run_command) if s["puid"] in puids]
    return found


def test_explanations_say_only_what_happened(submit: Any, outlet: Any, run_command: Any) -> None:
    rita = staff_in("reviewer", "rita")
    item = ContentItemFactory.create(outlet=outlet, slug="explained-unsworn")
    # A requester who swore nothing, decided by a reviewer.
    unsworn = submit(statements=[], urls=[item.source_url]).case
    review.case_approve(case=unsworn, user_id=rita.pk)
    drive(unsworn)
    statement = _explained(run_command, unsworn)
    explanation = statement["illegal_content_explanation"]
    assert "under oath" not in explanation
    assert "made no sworn statement" in explanation
    assert "A reviewer examined the claim" in explanation
    assert statement["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"

    # A privacy request filed by the publisher's rights contact, approved by the trust rules.
    item = ContentItemFactory.create(outlet=outlet, slug="explained-trusted")
    trusted = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        email_verified=True,
        actor="staff:test",
        basis="privacy",
        statements=[],
        urls=[item.source_url],
    ).case
    drive(trusted)
    statement = _explained(run_command, trusted)
    explanation = statement["illegal_content_explanation"]
    assert statement["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert statement["category"] == "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS"
    assert explanation.startswith("The content's own publisher asked us")
    assert "said the content is about them" not in explanation
    assert "weighed" not in explanation
    assert "reviewer" not in explanation
    assert "no person deciding" in explanation
    assert "made no sworn statement" in explanation
    # The staff door reads as one sentence.
    assert statement["decision_facts"].startswith(
        "A notice received elsewhere and entered by our staff asked us to stop republishing"
    )

    # Sworn and reviewed: the oath is stated.
    item = ContentItemFactory.create(outlet=outlet, slug="explained-sworn")
    sworn = submit(
        basis="privacy", statements=statements_for("privacy"), urls=[item.source_url]
    ).case
    review.case_approve(case=sworn, user_id=rita.pk)
    drive(sworn)
    explanation = _explained(run_command, sworn)["illegal_content_explanation"]
    assert "declared so under oath" in explanation
    assert "weighed that person's privacy" in explanation
