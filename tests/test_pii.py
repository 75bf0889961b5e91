"""The redacted view of case inputs: field rules, the four detectors, the properties that must always hold, and who
sees past it (`cases.view_pii`) in the API, the review page and the case admin."""

from __future__ import annotations

import json
import logging
import string
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cases.api.serializers import CaseSerializer
from cases.models import Queue
from governance import jsonvalues
from governance.models import Category
from governance.pii import (
    IBAN_LENGTHS,
    find_pii,
    iban_checksum_ok,
    luhn_ok,
    might_hold_pii,
    redact,
    redact_text,
    run_detectors,
    text_redactor,
)
from tests.factories import grant_queue, make_case, make_category

# --- field rules ------------------------------------------------------------------------------------------------


def test_named_fields_are_redacted_at_any_depth_whatever_they_hold() -> None:
    value = {
        "email": "ann@example.com",
        "customer": {"Phone": 4930123456, "name": "Ann", "address": {"street": "Main St 1"}},
        "items": [{"name": "Kettle"}, {"name": "Mug"}],
    }

    redacted = redact(value, pii_fields=["email", "phone", "name", "address"])

    assert redacted == {
        "email": "[redacted]",
        "customer": {"Phone": "[redacted]", "name": "[redacted]", "address": "[redacted]"},
        "items": [{"name": "[redacted]"}, {"name": "[redacted]"}],
    }


def test_redact_leaves_its_argument_unchanged() -> None:
    value = {"email": "ann@example.com", "notes": ["call 030 1234567"]}

    redact(value, pii_fields=["email"])

    assert value == {"email": "ann@example.com", "notes": ["call 030 1234567"]}


def test_numbers_booleans_and_null_are_kept() -> None:
    value = {"amount": 105.55, "order": 4111111111111111, "gift": True, "note": None}

    assert redact(value, pii_fields=[]) == value


def test_no_field_rules_still_runs_the_detectors() -> None:
    assert redact(["write to ann@example.com"], pii_fields=None) == ["write to [email]"]


# --- detectors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail ann.lee+orders@shop.example.co.uk today", "Mail [email] today"),
        ("From: BOB_99@Example.ORG.", "From: [email]."),
        ("Card 4111 1111 1111 1111 exp 12/26", "Card [card] exp 12/26"),
        ("Card 4111-1111-1111-1111", "Card [card]"),
        ("Card 4111111111111111.", "Card [card]."),
        ("Amex 3782 822463 10005", "Amex [card]"),
        ("Visa 4222222222222 (13 digits)", "Visa [card] (13 digits)"),
        ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN [iban], thanks"),
        ("IBAN GB82WEST12345698765432", "IBAN [iban]"),
        ("iban fr14 2004 1010 0505 0001 3m02 606", "iban [iban]"),
        ("Call +49 30 1234567 or +44 (0)20 7946 0958", "Call [phone] or [phone]"),
        ("Call 0049 30 1234567", "Call [phone]"),
        ("Tel. (030) 1234567, mobile 0171-2345678", "Tel. [phone], mobile [phone]"),
        ("Appelez le 01 23 45 67 89", "Appelez le [phone]"),
        ("Ring 01712345678", "Ring [phone]"),
        ("US (555) 123-4567, 555.123.4567, 1-800-555-0199", "US [phone], [phone], [phone]"),
        ("Call 030 1234567 2 times", "Call [phone] 2 times"),
        ("Call +49 30 1234567 2026-11-02", "Call [phone] 2026-11-02"),
    ],
)
def test_detectors_replace_what_they_find(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order ORD-258309 for 105.55 EUR on 2026-11-02",
        "Refund 1.234.567,89 EUR or 1,234,567.89 USD or 1234567890123.45",
        "Dates 02.11.2026, 11/02/2026, 02-11-2026 and 2026-11-02 at 10:30",
        "Ticket #1000000, 12 items in 3 boxes, zip 10115, year 2026, ref 0123456",
        "Not a card: 4111 1111 1111 1112 nor 4111111111111112",
        "Not an IBAN: DE89370400440532013001",
        "Order ORD-4111111111111111 and SKU AB-4111-1111-1111-1111",
        "Invoice INV-0301234567 and version v2.0301234567",
        "Not an e-mail: user@localhost, @handle, a@b",
    ],
)
def test_ordinary_business_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_luhn_and_mod_97_checks() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert iban_checksum_ok("DE89370400440532013000")
    assert not iban_checksum_ok("DE89370400440532013001")


# --- properties -------------------------------------------------------------------------------------------------

_LOWER = string.ascii_lowercase
_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31))
_words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
_business = st.one_of(
    _words,
    st.builds(lambda a, b: f"{a}.{b:02d}", st.integers(0, 10**12), st.integers(0, 99)),  # amounts
    st.builds(lambda a, b: f"{a},{b:02d}", st.integers(0, 10**6), st.integers(0, 99)),
    st.builds(lambda n: f"ORD-{n}", st.integers(0, 10**20)),  # order ids
    st.builds(lambda n: f"#{n}", st.integers(0, 10**20)),
    _dates.map(lambda d: d.isoformat()),  # dates in the usual notations
    _dates.map(lambda d: d.strftime("%d.%m.%Y")),
    _dates.map(lambda d: d.strftime("%m/%d/%Y")),
    _dates.map(lambda d: d.strftime("%d-%m-%Y")),
    _dates.map(lambda d: d.strftime("%d/%m/%y")),
    st.times().map(lambda t: t.strftime("%H:%M")),
    st.integers(0, 99_999).map(str),  # counts, zip codes, years
    st.sampled_from(["EUR", "USD", "105.55", "ORD-258309", "2026-11-02", "x", "-", "(", ")", ",", "."]),
)


def _with_luhn(body: str) -> str:
    """Append the Luhn check digit to `body`."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def _group(digits: str, sizes: list[int], sep: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(digits[at : at + size])
        at += size
    return sep.join(parts)


_cards = st.one_of(
    st.builds(lambda b: _with_luhn(b), st.text(alphabet=string.digits, min_size=12, max_size=18)),
    st.builds(
        lambda b, sep: _group(_with_luhn(b), [4, 4, 4, 4], sep),
        st.text(alphabet=string.digits, min_size=15, max_size=15),
        st.sampled_from([" ", "-"]),
    ),
    st.builds(
        lambda b: _group(_with_luhn(b), [4, 6, 5], " "), st.text(alphabet=string.digits, min_size=14, max_size=14)
    ),
)


def _iban(country: str, bban: str) -> str:
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


_ibans = st.builds(
    lambda country, bban, printed: (
        " ".join(_iban(country, bban)[i : i + 4] for i in range(0, 22, 4)) if printed else _iban(country, bban)
    ),
    st.sampled_from(["DE"]),
    st.text(alphabet=string.digits, min_size=18, max_size=18),
    st.booleans(),
) | st.builds(
    _iban,
    st.sampled_from(["GB"]),
    st.builds(
        lambda b, n: b + n,
        st.text(_LOWER.upper(), min_size=4, max_size=4),
        st.text(string.digits, min_size=14, max_size=14),
    ),
)
_emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["com", "de", "co.uk", "example", "io"]),
)
_phones = st.one_of(
    st.builds(
        lambda cc, area, number: f"+{cc} {area} {number}",
        st.integers(1, 999),
        st.integers(10, 9999),
        st.integers(10**4, 10**8 - 1),
    ),
    st.builds(lambda area, number: f"0{area} {number}", st.integers(10, 9999), st.integers(10**4, 10**8 - 1)),
    st.builds(lambda area, number: f"(0{area}) {number}", st.integers(10, 9999), st.integers(10**4, 10**8 - 1)),
    st.builds(lambda area, number: f"0{area}-{number}", st.integers(10, 9999), st.integers(10**4, 10**8 - 1)),
    st.builds(lambda area, number: f"0{area}{number}", st.integers(10, 9999), st.integers(10**5, 10**8 - 1)),
    st.builds(lambda a, b, c: f"({a}) {b}-{c:04d}", st.integers(200, 999), st.integers(100, 999), st.integers(0, 9999)),
)
_pii = st.one_of(_cards, _ibans, _emails, _phones)


def _joined(tokens: list[str]) -> str:
    return " ".join(tokens)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(_business, max_size=5), pii=_pii, after=st.lists(_business, max_size=5))
def test_no_detected_pii_survives(before: list[str], pii: str, after: list[str]) -> None:
    text = _joined([*before, pii, *after])
    assume(pii not in _joined([*before, *after]))

    redacted = redact_text(text)

    assert pii not in redacted
    assert find_pii(redacted) == []


@settings(max_examples=300)
@given(st.lists(_business, max_size=12))
def test_ordinary_business_text_is_unchanged(tokens: list[str]) -> None:
    # Numbers side by side can spell a phone number ("555 123 4567"), so ordinary tokens are kept apart by words.
    text = " and ".join(tokens)
    assume(not any(c in text for c in "@"))

    assert redact_text(text) == text


_json: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | _pii | _business,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["email", "name", "text", "notes", "Phone", "x"]), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=_json, fields=st.lists(st.sampled_from(["email", "phone", "name"]), max_size=3))
def test_redact_is_idempotent(value: Any, fields: list[str]) -> None:
    once = redact(value, pii_fields=fields)

    assert redact(once, pii_fields=fields) == once


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_json,
    fields=st.lists(st.sampled_from(["email", "phone", "name", "NAME", "x"]), max_size=3),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_redacting_stored_json_text_equals_redacting_its_value(
    value: Any, fields: list[str], ascii_only: bool, spaced: bool
) -> None:
    """The export's skip (text_redactor) never changes a result: on the text as SQLite keeps it (ASCII, escapes)
    and as PostgreSQL writes jsonb (spaced, characters as they are)."""
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(value, ensure_ascii=ascii_only, separators=separators)

    assert text_redactor(fields)(text) == redact(value, pii_fields=fields)


def test_redacting_stored_json_text_hides_what_is_too_deep() -> None:
    deep: Any = "plain"
    for _ in range(jsonvalues.max_depth() + 1):
        deep = [deep]
    redacted = text_redactor([])(json.dumps(deep))

    assert redacted == redact(deep, pii_fields=[])
    assert "[redacted]" in json.dumps(redacted)


@settings(max_examples=500)
@given(st.text())
def test_nothing_detectable_survives_in_any_text(text: str) -> None:
    redacted = redact_text(text)

    assert find_pii(redacted) == []
    assert redact_text(redacted) == redacted


# Pieces that come near what the detectors look for: digits in runs of every length, the separators they allow
# (and some they do not), "@", country codes, words, and real PII and business text, glued together as they come.
_fragments = st.one_of(
    st.text(alphabet=string.digits, min_size=1, max_size=8),
    st.sampled_from([" ", "  ", "-", ".", "/", "(", ")", ",", "+", "#", "@", "00", "(0)", "\n", "_"]),
    _words,
    st.sampled_from(["DE", "GB", "NO", "de", "ab", "example.com", "ORD-", "IBAN ", "x", "\u00e9"]),
    _pii,
    _business,
    # The shortest phone numbers (7 digits) and IBANs whose letters leave no long run of digits.
    st.builds(lambda area, number: f"0{area} {number}", st.integers(10, 99), st.integers(1000, 9999)),
    st.builds(lambda number: f"+{number}", st.integers(10**6, 10**7 - 1)),
    st.sampled_from(["GB", "NO", "MT"]).flatmap(
        lambda country: st.builds(
            _iban,
            st.just(country),
            st.text(alphabet=_LOWER.upper() + string.digits, min_size=IBAN_LENGTHS[country] - 4).map(
                lambda bban: bban[: IBAN_LENGTHS[country] - 4]
            ),
        )
    ),
)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(_fragments, max_size=16).map("".join), st.text(alphabet="0123456789 .-/()+@#,aZ")))
def test_the_cheap_look_before_the_detectors_changes_no_result(text: str) -> None:
    assert redact_text(text) == run_detectors(text)
    if not might_hold_pii(text):
        assert find_pii(text) == []


# --- who sees what ----------------------------------------------------------------------------------------------

RAW_INPUT = {
    "name": "Ann Lee",
    "message": "Refund ORD-258309 (105.55 EUR) to DE89 3704 0044 0532 0130 00, mail ann@example.com",
}
REDACTED_INPUT = {"name": "[redacted]", "message": "Refund ORD-258309 (105.55 EUR) to [iban], mail [email]"}


@pytest.fixture
def people(db: None, make_user: Any) -> dict[str, Any]:
    """A category with a PII field rule and a quick-queue case holding personal data; a reviewer and an escalation
    manager who both work that queue (only the manager's role has `cases.view_pii`)."""
    category = make_category("refunds")
    Category.objects.filter(pk=category.pk).update(pii_fields=["name"])
    quick = Queue.objects.get(slug="refunds-quick")
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    manager = make_user("boss", roles=["Escalation Manager"], is_staff=True)
    for user in (reviewer, manager):
        grant_queue(user, quick)
    case = make_case(Category.objects.get(pk=category.pk), confidence=0.8, input=RAW_INPUT)
    assert case.queue == quick
    return {"case": case, "reviewer": reviewer, "manager": manager}


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_only_the_escalation_manager_role_holds_view_pii() -> None:
    holders = set(Group.objects.filter(permissions__codename="view_pii").values_list("name", flat=True))

    assert holders == {"Escalation Manager"}


def test_the_api_shows_the_redacted_input_without_view_pii_and_the_raw_one_with_it(
    people: dict[str, Any], api: Any, superuser: User
) -> None:
    case = people["case"]

    for user, expected in [
        (people["reviewer"], REDACTED_INPUT),
        (people["manager"], RAW_INPUT),
        (superuser, RAW_INPUT),
    ]:
        client = api(user)
        assert client.get(f"/api/v1/cases/{case.pk}/").json()["input"] == expected
        assert client.get("/api/v1/cases/").json()["results"][0]["input"] == expected
        assert client.post(f"/api/v1/cases/{case.pk}/claim/").json()["input"] == expected
        client.post(f"/api/v1/cases/{case.pk}/release/")


def test_a_serializer_without_a_request_shows_the_redacted_input(people: dict[str, Any]) -> None:
    assert CaseSerializer(people["case"]).data["input"] == REDACTED_INPUT


def test_the_review_page_shows_the_redacted_input_without_view_pii_and_the_raw_one_with_it(
    people: dict[str, Any],
) -> None:
    url = reverse("admin:reviews_work_case", args=[people["case"].pk])

    redacted = _client(people["reviewer"]).get(url).content.decode()
    raw = _client(people["manager"]).get(url).content.decode()

    assert "ann@example.com" not in redacted and "Ann Lee" not in redacted and "0532" not in redacted
    assert "[email]" in redacted and "[iban]" in redacted and "ORD-258309" in redacted
    assert "ann@example.com" in raw and "Ann Lee" in raw


def test_the_case_admin_shows_the_redacted_input_without_view_pii_and_the_raw_one_with_it(
    people: dict[str, Any], superuser: User
) -> None:
    url = reverse("admin:cases_case_change", args=[people["case"].pk])

    redacted = _client(people["reviewer"]).get(url)
    raw = _client(superuser).get(url).content.decode()

    assert redacted.status_code == 200
    assert "ann@example.com" not in redacted.content.decode() and "[email]" in redacted.content.decode()
    assert "needs the cases.view_pii permission" in redacted.content.decode()
    assert "ann@example.com" in raw and "[email]" not in raw


def test_nothing_logs_a_case_input(people: dict[str, Any], api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    manager = people["manager"]

    api(manager).get(f"/api/v1/cases/{people['case'].pk}/")
    _client(manager).get(reverse("admin:reviews_work_case", args=[people["case"].pk]))
    make_case(people["case"].category, input={"email": "bob@example.com"})

    assert "example.com" not in caplog.text
