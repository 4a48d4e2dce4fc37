"""Personal data out of the text before a model sees it.

Each type has one detector, registered by name. Structured values are found by pattern and
kept only when they pass their check: payment cards by the Luhn checksum, IBANs by mod-97
and the country's length, BICs by a valid country code, SSNs by the SSA's area/group/serial
rules (python-stdnum), phone numbers by libphonenumber's possible-number rules, IPs by the
address grammar. Values that look alike but carry no identity by themselves (account and
sort codes, dates of birth, 9-digit SSNs without dashes) need a context word before them.
Person names: a gazetteer of ~61,000 first names (``gender-guesser``, from Jörg Michael's
multinational name dictionary) with the surname that follows, titles (Mr, Dr ...), and
context cues (Dear, customer, beneficiary ...), minus first names that are also common
words, places or banks (May, Chase, Morgan ...) unless a surname or title confirms them,
and minus company names built from first names (Morgan Stanley, Wells Fargo ...).

Replacement: a type tag (``<CARD>``) or a consistent pseudonym (``<CARD_5f1c09a2>``, the
first 8 hex digits of HMAC-SHA256 keyed by a secret from the environment, never stored).
The same :func:`mask` runs in training, evaluation, prediction and serving.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator

from fintune.config import PII_TYPES, DataConfig, PrivacyConfig
from fintune.data import person_names  # noqa: F401  (registers the PERSON detector)
from fintune.data import pii_chinese  # noqa: F401  (registers CN_ID, CN_MOBILE, CN_USCC)
from fintune.data.pii_spans import DETECTORS, Span, detector
from fintune.errors import ConfigError


# ---------------------------------------------------------------- structured values

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Bounded by ASCII letters and digits, not \w: in Chinese text a number sits against characters.
# Nor part of a decimal number: the digits of 0.8444218515250481 pass Luhn one time in ten.
CARD_RE = re.compile(r"(?<![A-Za-z0-9_-])(?<!\d[.,])\d(?:[ -]?\d){11,18}(?![A-Za-z0-9_-])(?![.,]\d)")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
BIC_RE = re.compile(r"\b[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b")
SSN_RE = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")

_CONTEXT = r"(?i:{words})\W{{0,12}}"
SSN_CONTEXT_RE = re.compile(_CONTEXT.format(words=r"ssn|social security(?: number| no\.?)?") + r"(\d{9})\b")
MAESTRO_PREFIXES = ("50", "56", "57", "58", "6", "0604")
CARD_CONTEXT_RE = re.compile(r"(?i:card|visa|mastercard|maestro|amex|pan\b)|卡号|银行卡|信用卡|借记卡")
BIC_CONTEXT_RE = re.compile(r"(?i:swift|bic|bank identifier)")
ACCOUNT_RE = re.compile(
    r"(?i:\b(?:account|acct|a/c|iban)(?:\s*(?:no\.?|number|num|nr\.?|#))?)\s*[:#]?\s*(?:is\s+)?"
    r"(\d(?:[ -]?\d){5,17})(?![\w-])")
ENDING_RE = re.compile(r"(?i:\b(?:account|card|acct)\b[^.\d]{0,25}\bending(?: in| with)?)\s*[:#]?\s*(\d{4})\b")
SORT_CODE_RE = re.compile(r"(?i:\bsort[ -]?code)\s*[:#]?\s*(?:is\s+)?(\d{2}[- ]?\d{2}[- ]?\d{2})(?![\d-])")
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DATE = (rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}"
         rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: of)? (?i:{_MONTHS})\.?,? \d{{4}}"
         rf"|(?i:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}})")
DOB_RE = re.compile(r"(?i:\b(?:born(?: on)?|d\.?o\.?b\.?|date of birth|birth ?date|birthday)\b)"
                    r"[\s:,(\[-]*(?:is|was|of|on)?[\s:,(\[-]*(?:on\s+)?(" + _DATE + r")")
PHONE_CONTEXT_RE = re.compile(r"(?i:phone|tel\b|mobile|cell|call|fax|whatsapp|voicemail|dial|ring|sms|reach|contact)")
EXTENSION_RE = re.compile(r"\s*(?:x|ext\.?|extension)\s*\d{1,5}\b", re.IGNORECASE)


@detector("EMAIL")
def _emails(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for m in EMAIL_RE.finditer(text):
        yield Span("EMAIL", m.start(), m.end())


@detector("CARD")
def _cards(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum import luhn

    for m in CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        # 12-digit numbers (Maestro) need a Maestro prefix or a card cue: one random reference
        # number in ten passes Luhn.
        short_ok = (len(digits) > 12 or digits.startswith(MAESTRO_PREFIXES)
                    or CARD_CONTEXT_RE.search(text, max(0, m.start() - 30), m.start()))
        if 12 <= len(digits) <= 19 and len(set(digits)) > 1 and short_ok and luhn.is_valid(digits):
            yield Span("CARD", m.start(), m.end())


@detector("IBAN")
def _ibans(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum import iban

    for m in IBAN_RE.finditer(text):
        # A greedy match may run into the next word; shorten group by group until it checks.
        value = m.group()
        while len(value.replace(" ", "")) >= 15:
            if iban.is_valid(value.replace(" ", "")):
                yield Span("IBAN", m.start(), m.start() + len(value))
                break
            value = value[:-1].rstrip()


@detector("SWIFT")
def _bics(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum import bic

    for m in BIC_RE.finditer(text):
        code = m.group()
        # An 8-letter capitalized word with a country code inside (EARNINGS: IN) is no BIC
        # unless the text says so, or the location/branch part holds a digit.
        cue = BIC_CONTEXT_RE.search(text, max(0, m.start() - 40), m.start())
        if bic.is_valid(code) and (cue or any(c.isdigit() for c in code[6:])):
            yield Span("SWIFT", m.start(), m.end())


@detector("SSN")
def _ssns(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum.us import ssn

    for m in SSN_RE.finditer(text):
        if ssn.is_valid(re.sub(r"\D", "", m.group())):
            yield Span("SSN", m.start(), m.end())
    for m in SSN_CONTEXT_RE.finditer(text):
        if ssn.is_valid(m.group(1)):
            yield Span("SSN", m.start(1), m.end(1))


@detector("ACCOUNT")
def _accounts(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for pattern in (ACCOUNT_RE, ENDING_RE):
        for m in pattern.finditer(text):
            yield Span("ACCOUNT", m.start(1), m.end(1))


@detector("SORT_CODE")
def _sort_codes(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for m in SORT_CODE_RE.finditer(text):
        yield Span("SORT_CODE", m.start(1), m.end(1))


@detector("IP")
def _ips(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for pattern, parse in ((IPV4_RE, ipaddress.IPv4Address), (IPV6_RE, ipaddress.IPv6Address)):
        for m in pattern.finditer(text):
            try:
                parse(m.group())
            except ValueError:
                continue
            yield Span("IP", m.start(), m.end())


@detector("DOB")
def _births(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for m in DOB_RE.finditer(text):
        yield Span("DOB", m.start(1), m.end(1))


DATE_ONLY_RE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
PHONE_SHAPE_RE = re.compile(r"\+?\(?\d[\d ().-]*\d(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?", re.IGNORECASE)


@detector("PHONE")
def _phones(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    if sum(c.isdigit() for c in text) < 7:
        return
    import phonenumbers

    seen: set[tuple[int, int]] = set()
    for region in cfg.phone_regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
            extension = EXTENSION_RE.match(text, m.end)  # 555-0199 x23: the extension goes too
            end = extension.end() if extension else m.end
            if (m.start, end) not in seen and _phone_like(text, m.start, end, text[m.start:end]):
                seen.add((m.start, end))
                yield Span("PHONE", m.start, end)


def _phone_like(text: str, start: int, end: int, raw: str) -> bool:
    """libphonenumber finds any plausible digit run; keep the ones written like phone numbers:
    not part of a longer token (INV-2024-..., $1,234.56, a longer card-like number), not a
    date, 10-15 digits (7+ after a cue such as "call"), and a bare digit run only after a cue."""
    digits = sum(c.isdigit() for c in EXTENSION_RE.sub("", raw))
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    cue = PHONE_CONTEXT_RE.search(text, max(0, start - 25), start) is not None
    if re.search(r"[\w$€£¥.,/-]$", before) or re.search(r"\d[ -]$", before) or re.match(r"[.,]?\d|[\w/-]", after):
        return False
    if DATE_ONLY_RE.fullmatch(raw.strip()) or not PHONE_SHAPE_RE.fullmatch(raw.strip()):
        return False
    if digits > 15 or digits < (7 if cue else 10):
        return False
    return cue or any(c in raw for c in "+()-. ")


# ---------------------------------------------------------------- masking


def detect(text: str, cfg: PrivacyConfig) -> list[Span]:
    """Non-overlapping spans of the configured types; on overlap the type listed first in
    ``PII_TYPES`` wins (an IBAN holds digits a phone pattern would also take), then the longer."""
    found = [span for kind in cfg.types for span in DETECTORS[kind](text, cfg)]
    rank = {kind: i for i, kind in enumerate(PII_TYPES)}
    found.sort(key=lambda s: (rank[s.kind], -(s.end - s.start), s.start))
    kept: list[Span] = []
    for span in found:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def masking_on(cfg: DataConfig) -> bool:
    """``data.privacy.mask``, or by default: on when the model reads free text."""
    return cfg.privacy.mask if cfg.privacy.mask is not None else cfg.text_column is not None


def pseudonym_key(cfg: PrivacyConfig) -> bytes:
    """The secret for pseudonyms, from the environment; never written anywhere."""
    secret = os.environ.get(cfg.secret_env)
    if not secret:
        raise ConfigError(f"data.privacy.mode 'pseudonym' needs a secret: set the environment variable "
                          f"{cfg.secret_env} (the same one at training, prediction and serving time)")
    return secret.encode("utf-8")


def _normalized(kind: str, value: str) -> str:
    if kind in ("EMAIL", "PERSON"):
        return " ".join(value.casefold().split())
    return re.sub(r"[\s().-]", "", value).upper()


def mask(text: str, cfg: PrivacyConfig) -> str:
    """The text with every detected value replaced by its tag or pseudonym."""
    key = pseudonym_key(cfg) if cfg.mode == "pseudonym" else None  # no secret: fail on the first text
    spans = detect(text, cfg)
    if not spans:
        return text
    parts, last = [], 0
    for span in spans:
        parts.append(text[last:span.start])
        if key is None:
            parts.append(f"<{span.kind}>")
        else:
            digest = hmac.new(key, f"{span.kind}:{_normalized(span.kind, text[span.start:span.end])}".encode(),
                              hashlib.sha256).hexdigest()[:8]
            parts.append(f"<{span.kind}_{digest}>")
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


TAG_RE = re.compile(r"<(" + "|".join(PII_TYPES) + r")(?:_[0-9a-f]{8})?>")


def masking_report(texts: Iterable[str], cfg: DataConfig, max_examples: int = 5, chars: int = 160) -> dict:
    """Counts of replaced values per type, rows touched, and a few masked examples (the values
    themselves are gone: the examples show tags)."""
    if not masking_on(cfg):
        return {"masked": False}
    counts = dict.fromkeys(PII_TYPES, 0)
    rows, examples = 0, []
    for text in texts:
        kinds = TAG_RE.findall(text)
        if kinds:
            rows += 1
            for kind in kinds:
                counts[kind] += 1
            if len(examples) < max_examples:
                examples.append(text if len(text) <= chars else text[:chars] + "...")
    return {"masked": True, "mode": cfg.privacy.mode, "types": list(cfg.privacy.types),
            "counts": {k: v for k, v in counts.items() if v}, "rows_masked": rows, "examples": examples}
