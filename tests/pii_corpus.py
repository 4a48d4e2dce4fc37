"""A corpus of financial sentences with planted personal data, and the scoring of a detector.

Values come from Faker (seeded, several locales): names, phone numbers, e-mails, IBANs,
card numbers, BICs, SSNs, IPs; account and sort codes and dates are drawn here. Near misses
that must stay untouched sit in the same sentences: tickers, ISINs, CUSIPs, amounts,
invoice and order numbers, card-like numbers that fail Luhn, ordinary dates, companies and
places named like people (Morgan Stanley, Jackson Hole), months, capitalized words.

The detector under test never sees Faker's name lists: its gazetteer is another source.
"""

from __future__ import annotations

import random
import re
import string
from collections import defaultdict
from dataclasses import dataclass, field

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IE"]

TEMPLATES: dict[str, list[str]] = {
    "EMAIL": ["Please send the statement to {EMAIL} by Friday.", "Customer wrote from {EMAIL} about a chargeback.",
              "Contact: {EMAIL}; ref {INVOICE}.", "{EMAIL} asked why {TICKER} fell {PERCENT}."],
    "PHONE": ["Call me back on {PHONE} about the {AMOUNT} refund.", "Mobile: {PHONE}. Card blocked since {DATE}.",
              "The client left a voicemail from {PHONE} regarding {COMPANY}.",
              "Reach the branch at {PHONE} before {MONTH} 30.", "Phone number {PHONE}, order {ORDER}."],
    "CARD": ["My card {CARD} was charged twice for {AMOUNT}.", "Declined transaction on card number {CARD}.",
             "Please cancel {CARD}, not the one ending in the test number {BADCARD}.",
             "Refund to {CARD} for invoice {INVOICE}."],
    "IBAN": ["Wire the {AMOUNT} to IBAN {IBAN} today.", "Beneficiary account {IBAN}, reference {INVOICE}.",
             "SEPA transfer from {IBAN} failed on {DATE}.", "Please update my IBAN to {IBAN}."],
    "SWIFT": ["SWIFT code {SWIFT}, beneficiary {COMPANY}.", "Use BIC {SWIFT} for the {AMOUNT} payment.",
              "Intermediary bank swift: {SWIFT}; ISIN {ISIN}.", "The BIC/SWIFT is {SWIFT}."],
    "SSN": ["Applicant SSN {SSN} for the {AMOUNT} loan.", "Social security number {SSN} on file.",
            "Verify {SSN} against the credit report from {DATE}.", "SSN: {SSN_PLAIN}, CUSIP {CUSIP} held."],
    "ACCOUNT": ["Account number {ACCOUNT} is overdrawn by {AMOUNT}.", "Please credit acct # {ACCOUNT}.",
                "The account ending in {LAST4} was frozen on {DATE}.", "Transfer from a/c {ACCOUNT} to savings."],
    "SORT_CODE": ["Sort code {SORT_CODE}, account number {ACCOUNT}.", "Branch sort code: {SORT_CODE}.",
                  "Pay into sort-code {SORT_CODE} by {MONTH} 1."],
    "IP": ["Login from {IP} flagged as suspicious.", "Card-not-present fraud traced to IP {IP} on {DATE}.",
           "Session {ORDER} came from {IP} while {TICKER} traded at {AMOUNT}."],
    "DOB": ["Date of birth {DOB}, requesting a limit increase.", "Customer was born on {DOB}.",
            "DOB: {DOB}. Income {AMOUNT} per year.", "Please confirm your birthday ({DOB}) for verification."],
    "PERSON": ["{PERSON} called about a late fee on the {COMPANY} card.", "Dear {PERSON}, your loan is approved.",
               "Transfer {AMOUNT} to {PERSON} for the rent.", "I spoke with {PERSON} at the {PLACE} branch.",
               "{TITLE} {LAST} disputes the charge from {DATE}.", "Payment received from {PERSON}, thank you.",
               "Complaint: {PERSON} was charged {AMOUNT} twice.", "Customer {PERSON} asks about {TICKER} options.",
               "Please ask {FIRST} to sign the mandate.", "Approved by {PERSON} (credit desk) in {MONTH}."],
}
NEAR_MISS = [
    "{COMPANY} beat estimates; {TICKER} rose {PERCENT} on {DATE}.", "Invoice {INVOICE} for {AMOUNT} is overdue.",
    "ISIN {ISIN} and CUSIP {CUSIP} settle on {DATE}.", "Card-like reference {BADCARD} is not a card.",
    "Order {ORDER} shipped to the {PLACE} office in {MONTH}.", "Will the Fed cut rates in {MONTH}? {TICKER} slid.",
    "EARNINGS GUIDANCE RAISED; DIVIDEND UNCHANGED at {AMOUNT}.", "PO number {PO} approved for {AMOUNT}.",
    "Chase and {COMPANY} cut fees; Morgan Stanley held.", "Tracking {TRACKING} for the card replacement.",
    "Revenue of {AMOUNT} in Q3 2024 versus {AMOUNT} a year ago.", "The {PLACE} conference starts {DATE}.",
]
COMPANIES = ["Morgan Stanley", "Charles Schwab", "Wells Fargo", "Goldman Sachs", "Raymond James", "JPMorgan Chase",
             "Jack Henry & Associates", "Edward Jones", "Dow Jones", "Fannie Mae", "Lloyds Bank", "Barclays",
             "Santander", "Ally Financial", "Capital One", "American Express"]
PLACES = ["Paris", "Jordan", "Washington", "Jackson Hole", "Austin", "Victoria", "Georgia", "Lincoln", "Houston"]
MONTHS = ["May", "June", "April", "August", "March", "January"]
TICKERS = ["$AAPL", "$MSFT", "NASDAQ: TSLA", "NYSE: JPM", "$GS", "LSE: BARC"]


@dataclass
class Example:
    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)


class _Values:
    """Seeded values of every slot."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, faker in enumerate(self.fakers.values()):
            faker.seed_instance(seed * 100 + i)

    def faker(self, locales: list[str] | None = None):
        return self.fakers[self.rng.choice(locales or LOCALES)]

    def __call__(self, slot: str) -> str:
        r = self.rng
        if slot == "EMAIL":
            return self.faker().email()
        if slot == "PHONE":
            return self.faker(["en_US", "en_GB", "en_IE"]).phone_number()
        if slot == "CARD":
            number = self.faker().credit_card_number()
            if len(number) == 16 and r.random() < 0.5:
                number = " ".join(number[i:i + 4] for i in range(0, 16, 4))
            return number
        if slot == "IBAN":
            value = self.faker(["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT"]).iban()
            return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if r.random() < 0.5 else value
        if slot == "SWIFT":
            return self.faker().swift(length=r.choice([8, 11]))
        if slot in ("SSN", "SSN_PLAIN"):
            value = self.fakers["en_US"].ssn()
            return value.replace("-", "") if slot == "SSN_PLAIN" else value
        if slot == "ACCOUNT":
            return "".join(r.choice(string.digits) for _ in range(r.randint(8, 12)))
        if slot == "LAST4":
            return "".join(r.choice(string.digits) for _ in range(4))
        if slot == "SORT_CODE":
            return "-".join(f"{r.randint(0, 99):02d}" for _ in range(3))
        if slot == "IP":
            return self.faker().ipv4() if r.random() < 0.75 else self.faker().ipv6()
        if slot == "DOB":
            d = self.faker().date_of_birth(minimum_age=18, maximum_age=90)
            return r.choice([d.strftime("%Y-%m-%d"), d.strftime("%d/%m/%Y"), d.strftime("%m/%d/%Y"),
                             d.strftime("%d %B %Y"), d.strftime("%B %d, %Y")])
        if slot == "PERSON":
            faker = self.faker()
            return faker.name() if r.random() < 0.5 else f"{faker.first_name()} {faker.last_name()}"
        if slot == "FIRST":
            return self.faker().first_name()
        if slot == "LAST":
            return self.faker().last_name()
        if slot == "TITLE":
            return r.choice(["Mr.", "Mrs.", "Ms.", "Dr.", "Mr", "Ms"])
        return self._near_miss(slot)

    def _near_miss(self, slot: str) -> str:
        r = self.rng
        from stdnum import cusip, isin

        if slot == "AMOUNT":
            return r.choice([f"${r.randint(1, 9_999_999):,}.{r.randint(0, 99):02d}", f"EUR {r.randint(1, 99)}.{r.randint(1, 9)}bn",
                             f"£{r.randint(100, 99_999):,}", f"{r.randint(10, 999)} million dollars"])
        if slot == "PERCENT":
            return f"{r.randint(1, 30)}.{r.randint(0, 9)}%"
        if slot == "INVOICE":
            return f"INV-{r.randint(2019, 2025)}-{r.randint(0, 999_999):06d}"
        if slot == "PO":
            return f"{r.randint(4_500_000_000, 4_599_999_999)}"
        if slot == "ORDER":
            return f"#{r.choice(string.ascii_uppercase)}{r.randint(10, 99)}-{r.randint(10_000, 99_999)}"
        if slot == "TRACKING":
            return "1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        if slot == "ISIN":
            body = r.choice(["US", "GB", "DE", "FR"]) + "".join(r.choice(string.digits + string.ascii_uppercase)
                                                                for _ in range(9))
            return body + isin.calc_check_digit(body)
        if slot == "CUSIP":
            body = "".join(r.choice(string.digits) for _ in range(6)) + "".join(
                r.choice(string.digits + string.ascii_uppercase) for _ in range(2))
            return body + cusip.calc_check_digit(body)
        if slot == "BADCARD":
            from stdnum import luhn

            while True:
                number = "4" + "".join(r.choice(string.digits) for _ in range(15))
                if not luhn.is_valid(number):
                    return " ".join(number[i:i + 4] for i in range(0, 16, 4))
        if slot == "DATE":
            return r.choice([f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}", f"{r.randint(1, 28)}/{r.randint(1, 12)}/2023",
                             f"{r.choice(MONTHS)} {r.randint(1, 28)}, 2025"])
        if slot == "COMPANY":
            return r.choice(COMPANIES)
        if slot == "PLACE":
            return r.choice(PLACES)
        if slot == "MONTH":
            return r.choice(MONTHS)
        if slot == "TICKER":
            return r.choice(TICKERS)
        raise KeyError(slot)


GOLD_OF = {"SSN_PLAIN": "SSN", "LAST4": "ACCOUNT", "FIRST": "PERSON", "LAST": "PERSON"}
SLOT_RE = re.compile(r"\{([A-Z_0-9]+)\}")


def fill(template: str, values: _Values) -> Example:
    """The template with its slots filled; personal-data slots become gold spans."""
    out, spans, last = [], [], 0
    length = 0
    for m in SLOT_RE.finditer(template):
        out.append(template[last:m.start()])
        length += m.start() - last
        slot = m.group(1)
        value = values(slot)
        kind = GOLD_OF.get(slot, slot)
        if kind in TEMPLATES:
            spans.append((kind, length, length + len(value)))
        out.append(value)
        length += len(value)
        last = m.end()
    out.append(template[last:])
    return Example("".join(out), spans)


def corpus(per_type: int = 200, near_misses: int = 600, seed: int = 0) -> list[Example]:
    """``per_type`` sentences for each personal-data type and ``near_misses`` with none."""
    values = _Values(seed)
    examples = [fill(values.rng.choice(TEMPLATES[kind]), values) for kind in TEMPLATES for _ in range(per_type)]
    examples += [fill(values.rng.choice(NEAR_MISS), values) for _ in range(near_misses)]
    return examples


def score(examples: list[Example], detect) -> dict[str, dict[str, float]]:
    """Recall and precision per type. A gold span is found when a detection of its type covers
    at least half of it; a detection is correct when it covers half of a gold span of its type."""
    found, gold, correct, predicted = (defaultdict(int) for _ in range(4))
    for example in examples:
        spans = detect(example.text)
        for kind, start, end in example.spans:
            gold[kind] += 1
            found[kind] += any(s.kind == kind and _overlap(s.start, s.end, start, end) >= 0.5 * (end - start)
                               for s in spans)
        for s in spans:
            predicted[s.kind] += 1
            correct[s.kind] += any(kind == s.kind and _overlap(s.start, s.end, start, end) >= 0.5 * (end - start)
                                   for kind, start, end in example.spans)
    return {kind: {"recall": found[kind] / gold[kind] if gold[kind] else None,
                   "precision": correct[kind] / predicted[kind] if predicted[kind] else None,
                   "gold": gold[kind], "detected": predicted[kind]}
            for kind in sorted(set(gold) | set(predicted))}


def _overlap(a: int, b: int, c: int, d: int) -> int:
    return max(0, min(b, d) - max(a, c))
