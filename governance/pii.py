"""Personal data in case inputs: the redacted view (DESIGN.md, Audit and privacy).

Who may see past it is the cases layer's to say (it declares and checks `cases.view_pii`); this module only
knows how to redact.

`redact` is pure: it walks a JSON value and returns a new one in which

- the value of every object key named in the category's PII fields (at any depth, case-insensitively) is
  "[redacted]", whatever it held;
- inside every string, e-mail addresses become "[email]", IBANs that pass the mod-97 check "[iban]", payment
  card numbers that pass the Luhn check "[card]", and phone numbers "[phone]".

The detectors are tuned to leave ordinary business text alone: amounts ("105.55"), order ids ("ORD-258309"),
dates ("2026-11-02", "02.11.2026") and counts stay as they are; a 16-digit number that fails the Luhn check is
not a card. Numbers stored as JSON numbers are left alone too (timestamps and ids would look like cards): a
field that holds personal data as a number belongs in the category's PII fields. Object keys are never
rewritten, only values.

Redacting twice gives the same result as redacting once, which is how the retention purge tells a purged input
from a raw one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from governance import jsonvalues

REDACTED = "[redacted]"
EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
IBAN = "[iban]"

# Lookbehinds shared by the number detectors: not glued to a word or number ("ORD-258309", "v2.4111", "#4111").
_NOT_AFTER_WORD = r"(?<![A-Za-z0-9+#])(?<![A-Za-z0-9][-.,/])"
# ...and not continued by one, nor by the decimals of an amount ("1234567890123.45").
_NOT_BEFORE_WORD = r"(?![A-Za-z0-9])(?![.,][0-9])"
_ENDS_HERE = re.compile(_NOT_BEFORE_WORD)
# The fewest digits a card or phone number holds (a phone number's 7), with only separators the number detectors
# allow between them: what `might_hold_pii` looks for.
_SEVEN_DIGIT_RUN = re.compile(r"[0-9](?:[ ./()\-]*+[0-9]){6}")


def redact(value: Any, *, pii_fields: Iterable[str] | None) -> Any:
    """The redacted view of a JSON value (see the module docstring). Never changes `value` itself."""
    return redactor(pii_fields)(value)


def _rules(pii_fields: Iterable[str] | None) -> tuple[frozenset[str], int]:
    """The PII field names as they are compared (casefolded), and the depth past which a value is hidden whole."""
    names = [pii_fields] if isinstance(pii_fields, str) else pii_fields or ()
    return frozenset(str(name).casefold() for name in names), jsonvalues.max_depth()


def redactor(pii_fields: Iterable[str] | None) -> Callable[[Any], Any]:
    """`redact` for one category's PII fields, its rules resolved once: for redacting many values alike (an export)."""
    fields, limit = _rules(pii_fields)
    return lambda value: _walk(value, fields, limit)


def text_redactor(pii_fields: Iterable[str] | None) -> Callable[[str], Any]:
    """`redactor` for values stored as JSON text (an export reads a million of them): decodes the text and redacts
    it, running the detectors on its strings only where a look at the whole text says one might match.

    The look holds for text without a backslash, where every string appears as it is: a string the detectors
    could match makes `might_hold_pii` true of the whole text (its patterns match the same characters with the
    same neighbours, and a quote is neither letter nor digit). The PII fields and the depth limit are applied
    either way.
    """
    fields, limit = _rules(pii_fields)
    decode = json.JSONDecoder().decode

    def redact_text_value(text: str) -> Any:
        detect = "\\" in text or might_hold_pii(text)
        return _walk(decode(text), fields, limit, detect=detect)

    return redact_text_value


def _walk(value: Any, fields: frozenset[str], limit: int, depth: int = 0, *, detect: bool = True) -> Any:
    """The redacted view of `value`; `detect=False` where no string can hold what the detectors find."""
    if isinstance(value, str):
        return redact_text(value) if detect else value
    if isinstance(value, dict | list | tuple) and depth >= limit:
        # Intake refuses deeper JSON (governance.jsonvalues); anything deeper that got stored some other way is
        # hidden whole rather than walked: the redacted view never fails and never shows what it did not check.
        return REDACTED
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and key.casefold() in fields
            else _walk(item, fields, limit, depth + 1, detect=detect)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(item, fields, limit, depth + 1, detect=detect) for item in value]
    return value


def redact_text(text: str) -> str:
    """Replace every e-mail address, IBAN, card number and phone number in `text` by its placeholder.

    Until nothing more is found: a replacement can free its neighbour ("a@b.com+c@d.com": the second address is
    glued to the first until the first is "[email]"). Each pass removes digits or an "@", so this ends, and
    redacting the result again changes nothing.
    """
    # A pass over text no detector can match changes nothing, so the cheap looks skip it (before the first pass and
    # after the last change), and skip each detector the text as it stands cannot feed.
    while might_hold_pii(text):
        redacted = text
        for detector in DETECTORS:
            if detector.might_match(redacted):
                redacted = detector.replace(redacted)
        if redacted == text:
            return text
        text = redacted
    return text


def might_hold_pii(text: str) -> bool:
    """Could any detector find something in `text`? False only when none can: a cheap look before the detectors.

    Each detector needs something most business text lacks: an e-mail address its "@"; an IBAN its start, two
    letters and two digits beginning a word; a card 13 digits and a phone number 7, in one run of digits and the
    separators the detectors allow between them (" .-/()"). Ticket numbers, order ids and amounts have fewer.
    """
    return "@" in text or _SEVEN_DIGIT_RUN.search(text) is not None or _IBAN_START.search(text) is not None


def run_detectors(text: str) -> str:
    """`redact_text` without the cheap looks: every detector, until nothing more is found (what they must agree
    with)."""
    while True:
        redacted = text
        for detector in DETECTORS:
            redacted = detector.replace(redacted)
        if redacted == text:
            return text
        text = redacted


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def find_pii(text: str) -> list[Finding]:
    """What the detectors find in `text`, each detector on the text as it is (for tests and diagnostics)."""
    return [
        Finding(detector.placeholder, start, end, text[start:end])
        for detector in DETECTORS
        for start, end in detector.spans(text)
    ]


@dataclass(frozen=True)
class Detector:
    placeholder: str
    spans: Callable[[str], list[tuple[int, int]]]
    # A cheap look that is false only where `spans` finds nothing.
    might_match: Callable[[str], object]

    def replace(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts += [text[last:start], self.placeholder]
            last = end
        parts.append(text[last:])
        return "".join(parts)


# --- e-mail -----------------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)


def _email_spans(text: str) -> list[tuple[int, int]]:
    if "@" not in text:
        return []
    return [match.span() for match in _EMAIL.finditer(text)]


# --- IBAN -------------------------------------------------------------------------------------------------------

# Lengths of the IBAN of each country that has one (SWIFT's IBAN registry): an IBAN is exactly this long, so a
# longer token is never mistaken for one.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

_IBAN_START = re.compile(r"\b[A-Za-z]{2}[0-9]{2}")


def _is_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def iban_checksum_ok(iban: str) -> bool:
    """The ISO 13616 check: move the first four characters to the end, letters to numbers (A=10), mod 97 is 1."""
    iban = iban.upper()
    if len(iban) < 5 or not all(_is_alnum(c) for c in iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    end_of_last = 0
    for match in _IBAN_START.finditer(text):
        start = match.start()
        length = IBAN_LENGTHS.get(text[start : start + 2].upper())
        if start < end_of_last or length is None:
            continue
        # Take exactly `length` letters and digits, allowing single spaces between them (the printed form).
        chars: list[str] = []
        i = start
        while len(chars) < length and i < len(text):
            if _is_alnum(text[i]):
                chars.append(text[i])
                i += 1
            elif text[i] == " " and i + 1 < len(text) and _is_alnum(text[i + 1]):
                i += 1
            else:
                break
        complete = len(chars) == length and (i == len(text) or not _is_alnum(text[i]))
        if complete and iban_checksum_ok("".join(chars)):
            spans.append((start, i))
            end_of_last = i
    return spans


# --- payment cards ----------------------------------------------------------------------------------------------

# A run of digit groups separated by single spaces or dashes; which part of it (if any) is a card is decided below.
_DIGIT_RUN = re.compile(_NOT_AFTER_WORD + r"[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_shaped(groups: list[re.Match[str]], text: str) -> bool:
    """13-19 digits, either in one piece or grouped as printed on cards (4-4-4-4, 4-6-5, 4-4-4-4-3...)."""
    digits = "".join(group.group() for group in groups)
    if not 13 <= len(digits) <= 19:
        return False
    if len(groups) > 1:
        separators = {text[a.end()] for a in groups[:-1]}
        if len(separators) != 1 or len(groups[0].group()) != 4:
            return False
        if not all(3 <= len(group.group()) <= 6 for group in groups[1:]):
            return False
    return luhn_ok(digits)


def _card_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        if len(run.group()) < 13:
            continue  # too few digits for a card: most numbers in a text end here
        groups = list(_GROUP.finditer(text, run.start(), run.end()))
        # The run's last group may not end the card when a word or decimals follow it directly.
        open_end = _ENDS_HERE.match(text, run.end()) is not None
        first = 0
        while first < len(groups):
            last_allowed = len(groups) - 1 if open_end else len(groups) - 2
            found = next(
                (
                    last
                    for last in range(min(last_allowed, first + 4), first - 1, -1)
                    if _card_shaped(groups[first : last + 1], text)
                ),
                None,
            )
            if found is None:
                first += 1
                continue
            spans.append((groups[first].start(), groups[found].end()))
            first = found + 1
    return spans


# --- phone numbers ----------------------------------------------------------------------------------------------

# International: "+49 30 1234567", "+44 (0)20 7946 0958", "0049 30 1234567"; 7 to 15 digits after the prefix.
# The patterns are bounded (a phone number has at most 15 digits) so a long run of numbers costs linear time.
_PHONE_INTL = re.compile(r"(?<![A-Za-z0-9+#])(?:\+|00(?=[1-9]))[0-9](?:[ .\-/]?(?:\([0-9]{1,4}\)|[0-9])){0,20}")
# National with a trunk 0: "030 12345678", "(030) 1234567", "0171-2345678", "01 23 45 67 89", "01712345678".
_PHONE_TRUNK = re.compile(_NOT_AFTER_WORD + r"(?:\(0[1-9][0-9]{0,4}\)|0[1-9][0-9]{0,12})(?:[ /-]?[0-9]{2,13}){0,6}")
# North American: "555-123-4567", "(555) 123-4567", "555.123.4567", "1-800-555-0199".
_PHONE_NANP = re.compile(
    _NOT_AFTER_WORD + r"(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}" + _NOT_BEFORE_WORD
)
# A date: never a phone number, nor the tail of one ("+49 30 1234567 2026-11-02").
_DATE = r"(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}([./-])[0-9]{1,2}\1[0-9]{2,4})(?![0-9])(?!\1[0-9])"
_DATE_AT_START = re.compile(_DATE)
_DATE_AFTER_SPACE = re.compile(r"(?<= )" + _DATE)
_PHONE_PIECE = re.compile(r"\([0-9]+\)|[0-9]+")


def _phone_end(text: str, start: int, end: int, min_digits: int, max_digits: int, skip: str = "") -> int | None:
    """Where a phone number found at text[start:end] really ends, or None if it is not one.

    The patterns take every group of digits that follows, so a number followed by another ("call 030 1234567
    2 times") or by a date is cut back: before any date, then after the last group that keeps the digit count
    (not counting pieces equal to `skip`) within bounds and is not continued by a word or decimals.
    """
    date = _DATE_AFTER_SPACE.search(text, start, end)
    if date is not None:
        end = date.start() - 1
    best = None
    digits = 0
    for piece in _PHONE_PIECE.finditer(text, start, end):
        if piece.group() != skip:
            digits += len(piece.group().strip("()"))
        if digits > max_digits:
            break
        if digits >= min_digits and _ENDS_HERE.match(text, piece.end()):
            best = piece.end()
    return best


def _phone_spans(text: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    # A candidate that turns out not to be a phone number (or only its start is one) may hide one further on:
    # each search resumes right after what was taken, or one character after a rejected start.
    position = 0
    while (match := _PHONE_INTL.search(text, position)) is not None:
        start, body = match.start(), match.group()
        end = None
        if body.startswith("+") or re.search(r"[ .\-/()]", body):  # "0049301234567" could as well be an id
            prefix = 1 if body.startswith("+") else 2
            end = _phone_end(text, start + prefix, match.end(), 7, 15, skip="(0)")
        if end is not None:
            found.append((start, end))
        position = end or start + 1
    position = 0
    while (match := _PHONE_TRUNK.search(text, position)) is not None:
        start = match.start()
        date = _DATE_AT_START.match(text, start)
        if date is not None:
            position = date.end()  # "02-11-2026" is a date; look again right after it
            continue
        separated = bool(re.search(r"[ /\-()]", match.group()))
        end = _phone_end(text, start, match.end(), 7 if separated else 9, 13)
        if end is not None:
            found.append((start, end))
        position = end or start + 1
    found += [match.span() for match in _PHONE_NANP.finditer(text)]
    return _merge(found)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# The order matters: an e-mail address or IBAN holds digits the number detectors would otherwise take apart.
DETECTORS: tuple[Detector, ...] = (
    Detector(EMAIL, _email_spans, lambda text: "@" in text),
    Detector(IBAN, _iban_spans, _IBAN_START.search),
    Detector(CARD, _card_spans, _SEVEN_DIGIT_RUN.search),
    Detector(PHONE, _phone_spans, _SEVEN_DIGIT_RUN.search),
)
