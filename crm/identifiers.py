"""Normalization of the identifiers customers are known by.

One place decides what "the same phone / e-mail / account" means, for storage,
search, lookup and feedback alike.
"""

import hashlib
import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm.models import IdentityKind

_ACCOUNT_SEPARATORS = re.compile(r"[\s\-]+")
_ACCOUNT_FORM = re.compile(r"^[A-Z0-9]{4,32}$")


class InvalidIdentifier(ValueError):
    """The value cannot be read as an identifier of its kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def normalize_phone(value: str, region: str | None = None) -> str:
    """Return the E.164 form of a possible number; national numbers are read in the default region."""
    raw = (value or "").strip()
    if not raw or len(raw) > 64:
        raise InvalidIdentifier("phone", "Enter a phone number.")
    if raw.startswith("00"):
        # The international prefix most of the world dials; phonenumbers only knows
        # it for regions that use it, so read it as '+' everywhere.
        raw = "+" + raw[2:]
    shape = _e164_shape(raw)
    if shape in _POSSIBLE_SHAPES:
        return raw
    e164 = _phone_parsed(value, raw, region)
    if shape is not None and e164 == raw:
        _POSSIBLE_SHAPES.add(shape)
    return e164


def _phone_parsed(value: str, raw: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(raw, region or settings.CRM_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("phone", f"'{value}' is not a phone number.") from None
    # Possible (the right length for its country), not "valid": the metadata's list of
    # assigned ranges lags the real world, and a new range must never break a screen
    # pop or a wrap-up (CONTRACT.md). An unknown number simply matches nobody.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidIdentifier("phone", f"'{value}' is not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A number already written in E.164 ('+' and ASCII digits) is its own E.164 form whenever
# phonenumbers would not strip a national prefix from it and finds its length possible; and
# for such a string its answer depends only on the country code (the first 1-3 digits that
# name one, as phonenumbers reads them) and the national number's length. So once phonenumbers
# has returned one such number unchanged, every other of the same (code, length) is returned
# as given without parsing: 16 us -> under 2 us a number (bulk imports; tests compare the two
# for every country code and length).
_E164_WRITTEN = re.compile(r"\+[1-9][0-9]+")
_POSSIBLE_SHAPES: set[tuple[int, int]] = set()  # (country code, national length), learnt from phonenumbers
_NATIONAL_PREFIX: dict[int, re.Pattern[str] | None] = {}


def _e164_shape(raw: str) -> tuple[int, int] | None:
    """(country code, national length) of a number written in E.164 with no national prefix to strip."""
    if not _E164_WRITTEN.fullmatch(raw):
        return None
    digits = raw[1:]
    for size in range(1, min(len(digits), 3) + 1):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if code not in _NATIONAL_PREFIX:
        _NATIONAL_PREFIX[code] = _national_prefix(code)
    prefix = _NATIONAL_PREFIX[code]
    if prefix is not None and prefix.match(national):
        return None  # phonenumbers may strip it: always ask
    return code, len(national)


def _national_prefix(code: int) -> re.Pattern[str] | None:
    """The pattern phonenumbers strips as a national prefix for this country code (None: none)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        code, phonenumbers.region_code_for_country_code(code)
    )
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


# Django's e-mail validator's own patterns, compiled here: through its lazy objects each match
# cost more than the match (a fifth of reading an import file's customer rows, profiled).
_EMAIL_USER = re.compile(validate_email.user_regex.pattern, validate_email.user_regex.flags)
_EMAIL_DOMAIN = re.compile(validate_email.domain_regex.pattern, validate_email.domain_regex.flags)


def normalize_email(value: str) -> str:
    raw = (value or "").strip()
    user, at, domain = raw.rpartition("@")
    if not (at and len(raw) <= 320 and _EMAIL_USER.match(user) and _EMAIL_DOMAIN.match(domain)):
        try:  # the validator decides the rest: refused, or an allow-listed or literal domain
            validate_email(raw)
        except ValidationError:
            raise InvalidIdentifier("email", f"'{value}' is not an e-mail address.") from None
    return raw.casefold()


def normalize_account(value: str) -> str:
    """Account numbers: spaces, dashes and case are not significant."""
    normalized = _ACCOUNT_SEPARATORS.sub("", (value or "")).upper()
    if not _ACCOUNT_FORM.match(normalized):
        raise InvalidIdentifier("account", f"'{value}' is not an account number (4-32 letters or digits).")
    return normalized


_NORMALIZERS = {
    IdentityKind.PHONE: normalize_phone,
    IdentityKind.EMAIL: normalize_email,
    IdentityKind.ACCOUNT: normalize_account,
}


def normalize(kind: str, value: str) -> str:
    if kind not in _NORMALIZERS:
        raise InvalidIdentifier(kind, f"'{kind}' is not an identifier kind (phone, email, account).")
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, "Must be a string.")
    return _NORMALIZERS[kind](value)


def guess_identifiers(text: str) -> dict[str, str]:
    """Every identifier a free-text search term could be: {kind: normalized}."""
    found = {}
    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.ACCOUNT):
        if kind == IdentityKind.EMAIL and "@" not in text:
            continue
        try:
            found[kind.value] = normalize(kind, text)
        except InvalidIdentifier:
            continue
    return found


ERASED_KEY_PREFIX = "erased:"


def erased_key(value: str) -> str:
    """What an erased customer's idempotency key (call_id, external_id) becomes: a hash.

    It still dedupes (a repeat of the call or record finds it and is refused with 404)
    but no longer says which call or which other system's record it was.
    """
    return ERASED_KEY_PREFIX + hashlib.sha256(value.encode()).hexdigest()
