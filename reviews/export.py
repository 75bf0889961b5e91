"""The label export (DESIGN.md, Feedback loop): one record per label, the fields in DESIGN.md's order, the input
always in its redacted view, streamed so a million labels cost the same memory as ten.

The API (`GET /api/v1/labels/`) and the admin's export job both write rows from `label_rows` through `render`, so the
two exports are the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Func, TextField
from django.db.models.functions import Cast
from django.utils.dateparse import parse_datetime

from governance.models import Category
from governance.permissions import is_data_curator
from governance.pii import text_redactor
from reviews.models import Label, LabelQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# DESIGN.md's order, exactly: integrations read the CSV by position as often as by name.
FIELDS = (
    "id",
    "case",
    "external_id",
    "category",
    "label",
    "model_label",
    "output",
    "input",
    "source",
    "reviewer",
    "certified",
    "passed_gate",
    "reason_code",
    "model_version",
    "policy_version",
    "created_at",
)
FORMATS = ("jsonl", "csv")
CHUNK = 2000


@dataclass(frozen=True)
class ExportRequest:
    """What to export: one category (or every one the user may see), a time range, only labels past the gate."""

    category: Category | None = None
    since: datetime | None = None
    until: datetime | None = None
    passed_gate: bool | None = None
    format: str = "jsonl"

    @classmethod
    def parse(cls, params: Any, user: User | AnonymousUser) -> ExportRequest:
        """From query parameters; a ValidationError names the parameter that is wrong. A category the user may not
        see reads as unknown (Category.DoesNotExist, a 404)."""
        fmt = params.get("format") or "jsonl"
        if fmt not in FORMATS:
            raise ValidationError({"format": f"Choose one of {', '.join(FORMATS)}."})
        category = None
        if params.get("category"):
            category = Category.objects.visible_to(user).get(slug=params["category"])
        passed_gate = params.get("passed_gate")
        if passed_gate not in (None, "", "true", "false"):
            raise ValidationError({"passed_gate": "Give true or false."})
        return cls(
            category=category,
            since=_instant(params, "since"),
            until=_instant(params, "until"),
            passed_gate=None if passed_gate in (None, "") else passed_gate == "true",
            format=fmt,
        )

    def labels(self, user: User | AnonymousUser) -> LabelQuerySet:
        labels = Label.objects.visible_to(user)
        if self.category is not None:
            labels = labels.filter(category=self.category)
        if self.since is not None:
            labels = labels.filter(created_at__gte=self.since)
        if self.until is not None:
            labels = labels.filter(created_at__lt=self.until)
        if self.passed_gate is not None:
            labels = labels.filter(passed_gate=self.passed_gate)
        return labels.order_by("created_at", "id")


def _instant(params: Any, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError({name: "Give an ISO 8601 date and time with its offset, e.g. 2026-12-01T09:00:00Z."})
    return value


def require_exporter(user: User | AnonymousUser) -> None:
    """Data curators and superusers export labels (DESIGN.md, Feedback loop); anyone else is refused."""
    if not is_data_curator(user):
        raise PermissionDenied("Exporting labels needs the Data Curator role (or a superuser).")


class IsoInstant(Func):
    """A timestamp as the text `datetime.isoformat()` gives for it in UTC, written by the database: parsing a
    million timestamps into datetimes only to format them again cost a sixth of the export's time."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # isoformat leaves out the microseconds when they are 0; to_char's US always writes six digits.
        utc = "(%(expressions)s AT TIME ZONE 'UTC')"
        template = (
            f"(CASE WHEN date_trunc('second', {utc}) = {utc} THEN to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
            f"ELSE to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') END || '+00:00')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Stored as naive UTC text, str(datetime): "2026-12-01 09:00:00[.ffffff]".
        return self.as_sql(compiler, connection, template="(replace(%(expressions)s, ' ', 'T') || '+00:00')", **extra)


# The columns read per label, in FIELDS order but for `category` (a category's slug and PII fields are read once,
# not joined into every row): plain tuples, no model instances, so a million labels cost a million tuples. The two
# JSON columns are read as their text and decoded here (the input by `text_redactor`): the same json.loads
# JSONField.from_db_value does, without Django's per-row converter pass (on PostgreSQL no column is left with a
# converter, so the rows come as fetched).
_COLUMNS: tuple[str | Func, ...] = (
    "id",
    "case_id",
    "case__external_id",
    "category_id",
    "label",
    "model_label",
    Cast("output", output_field=TextField()),
    Cast("case__input", output_field=TextField()),
    "source",
    "reviewer__username",
    "certified",
    "passed_gate",
    "reason_code",
    "model_version",
    "policy_version",
    IsoInstant("created_at"),
)
# How many lines go into one piece of the stream: one write to the socket (or the file) per ~64 KiB, not per label.
LINES_PER_PIECE = 128
_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_csv_json = json.JSONEncoder(ensure_ascii=False).encode
# Both JSON columns are NOT NULL (a JSON null is the text "null"), so every value read is JSON text.
_decode = json.JSONDecoder().decode


# Where the JSON values sit in a row, and the flags CSV spells out.
_OUTPUT = FIELDS.index("output")
_INPUT = FIELDS.index("input")
_CATEGORY = FIELDS.index("category")
_CSV_FLAGS = tuple(FIELDS.index(name) for name in ("certified", "passed_gate"))


def label_rows(labels: LabelQuerySet) -> Iterator[list[Any]]:
    """One row per label, its values in FIELDS order, read in chunks: the input is its redacted value (by its
    category's PII rules), the output still the JSON text stored (JSON lines decode it into the record; CSV writes
    it as it is, sparing a decode and an encode a label)."""
    categories: dict[int, tuple[str, Callable[[Any], Any]]] = {}
    for values in labels.values_list(*_COLUMNS).iterator(chunk_size=CHUNK):
        row = list(values)
        category = categories.get(row[_CATEGORY])
        if category is None:
            slug, pii_fields = Category.objects.values_list("slug", "pii_fields").get(pk=row[_CATEGORY])
            category = categories[row[_CATEGORY]] = (slug, text_redactor(pii_fields))
        row[_CATEGORY] = category[0]
        row[_INPUT] = category[1](row[_INPUT])
        yield row


def jsonl_lines(rows: Iterator[list[Any]]) -> Iterator[str]:
    """One compact JSON object a line, LINES_PER_PIECE lines to a piece."""
    piece: list[str] = []
    for row in rows:
        row[_OUTPUT] = _decode(row[_OUTPUT])
        piece.append(_compact_json(dict(zip(FIELDS, row, strict=True))))
        if len(piece) == LINES_PER_PIECE:
            piece.append("")  # the last line's newline
            yield "\n".join(piece)
            piece = []
    if piece:
        piece.append("")
        yield "\n".join(piece)


def csv_lines(rows: Iterator[list[Any]]) -> Iterator[str]:
    """The header, then one row per label; JSON values (output, input) as JSON text, flags as true/false."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for row in rows:
        # Only the input and the flags need spelling out: the output is JSON text already, the writer writes
        # strings and numbers as they are, and None as an empty cell.
        row[_INPUT] = _csv_json(row[_INPUT])
        for index in _CSV_FLAGS:
            row[index] = "true" if row[index] else "false"
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


class Counted:
    """Rows passed through while counting them (the admin's export shows how far it got)."""

    def __init__(self, rows: Iterator[list[Any]]) -> None:
        self._rows = rows
        self.count = 0

    @property
    def rows(self) -> Iterator[list[Any]]:
        for row in self._rows:
            self.count += 1
            yield row


def render(rows: Iterator[list[Any]], fmt: str) -> Iterator[str]:
    """The rows as lines of the format: JSON lines, or CSV with its header."""
    return jsonl_lines(rows) if fmt == "jsonl" else csv_lines(rows)


def lines(request: ExportRequest, user: User | AnonymousUser) -> Iterator[str]:
    """The API's export. In a transaction, PostgreSQL sends a server-side cursor's rows as it finds them; outside
    one (autocommit), Django declares the cursor WITH HOLD, and the whole result (half a gigabyte for a million
    labels) is computed and stored before the first row leaves. (The admin's job writes its progress as it goes,
    so it reads outside a transaction, where those writes show at once.)"""
    with transaction.atomic():
        yield from render(label_rows(request.labels(user)), request.format)
