"""Chinese personal data: resident identity numbers (居民身份证号码), mainland mobile numbers and
unified social credit codes (统一社会信用代码). Bank card numbers (银行卡号, UnionPay 62...) are
the CARD detector's, which checks Luhn for them as for any card.

Chinese text has no spaces between words, so a number sits right against characters: the
patterns bound a value by ASCII letters and digits only, never by ``\\b`` or ``\\w`` (which
count every CJK character as a word character). Full-width digits (１２３) are normalized by
cleaning before detection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fintune.config import PrivacyConfig
from fintune.data.pii_spans import Span, detector

_EDGE_BEFORE, _EDGE_AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
# 6-digit area (stdnum checks it against the list of counties), birth date (19xx/20xx), 3-digit sequence,
# check digit (0-9 or X).
RIC_RE = re.compile(_EDGE_BEFORE + r"\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx]" + _EDGE_AFTER)
# 1[3-9]x xxxx xxxx, maybe after +86 / 86 / 0086, with spaces or hyphens as people write it (138-1234-5678).
MOBILE_RE = re.compile(r"(?<![A-Za-z0-9+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _EDGE_AFTER)
# Registration authority, organization type, 6-digit area, 9-character organization code, check character.
USCC_RE = re.compile(_EDGE_BEFORE + r"[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-HJ-NP-RTUW-Y]{10}" + _EDGE_AFTER)


@detector("CN_ID")
def _resident_ids(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum.cn import ric

    for m in RIC_RE.finditer(text):
        if ric.is_valid(m.group()):  # the check digit and a real birth date
            yield Span("CN_ID", m.start(), m.end())


# An amount or a quantity, not a number to call: 13812345678元, ￥15000000000, 13900000000股.
AMOUNT_AFTER = frozenset("元万亿股手份张吨%.,")
AMOUNT_BEFORE = frozenset("￥¥$")


@detector("CN_MOBILE")
def _mobiles(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    for m in MOBILE_RE.finditer(text):
        # Eleven digits of the mobile plan; a longer digit run (an order or card number) has
        # no edge and does not match.
        after = text[m.end():m.end() + 1]
        before = text[max(0, m.start() - 1):m.start()]
        if after and after in AMOUNT_AFTER or before and before in AMOUNT_BEFORE:
            continue
        yield Span("CN_MOBILE", m.start(), m.end())


@detector("CN_USCC")
def _credit_codes(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    from stdnum.cn import uscc

    for m in USCC_RE.finditer(text):
        if uscc.is_valid(m.group()):  # the GB 32100-2015 check character
            yield Span("CN_USCC", m.start(), m.end())
