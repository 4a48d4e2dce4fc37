"""Person names in text: a gazetteer of ~61,000 first names (``gender-guesser``, from Jörg
Michael's multinational name dictionary) with the surname that follows, titles (Mr, Dr ...)
and context cues (Dear, customer, beneficiary ...), minus first names that are also common
words, places or banks (May, Chase, Morgan ...) unless a surname or title confirms them, and
minus company names built from first names (Morgan Stanley, Wells Fargo ...). Registered as
the PERSON detector of :mod:`fintune.data.privacy`."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from fintune.config import PrivacyConfig
from fintune.data.pii_spans import Span, detector


TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "madam", "madame",
          "mme", "herr", "frau", "monsieur", "señor", "senor", "señora", "sra", "sr", "signor", "signora"}
CUES = re.compile(
    r"(?i:\b(?:dear|hi|hello|hey|thanks|thank you|regards|sincerely|signed|customer|client|cardholder|"
    r"card holder|account holder|beneficiary|payee|payer|applicant|borrower|guarantor|co-signer|"
    r"tenant|spoke (?:to|with)|talked to|met with|name is|name:|named|"
    r"(?:signed|approved|authori[sz]ed|submitted|sent|written|reviewed) by|attn|attention|on behalf of|c/o)\b)"
    r"[\s,:.-]*$")
# Capitalized words that start sentences or name days, months and institutions: never a name
# by themselves (a title or a following surname still makes "May Chen" a name).
STOPWORDS = {
    "the", "a", "an", "this", "that", "these", "those", "our", "your", "my", "his", "her", "their", "its", "we",
    "you", "they", "he", "she", "it", "i", "please", "thanks", "thank", "dear", "hello", "hi", "yes", "no",
    "one", "two", "three", "first", "second", "new", "old", "all", "any", "some", "each", "every", "if", "when",
    "while", "after", "before", "since", "until", "and", "or", "but", "so", "for", "from", "with", "without",
    "to", "in", "on", "at", "by", "of", "as", "is", "are", "was", "were", "be", "been", "has", "have", "had",
    "do", "does", "did", "can", "could", "should", "would", "might", "must", "shall", "not",
    "payment", "transfer", "invoice", "order", "card", "account", "customer", "client", "complaint", "refund",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "july", "september", "october", "november", "december", "today",
    "tomorrow", "yesterday", "q1", "q2", "q3", "q4", "usd", "eur", "gbp", "ceo", "cfo", "cto", "coo",
    "barclays", "santander", "citi", "citibank", "natwest", "lloyds", "jpmorgan", "chase", "amex", "visa",
    "mastercard", "paypal", "revolut", "monzo", "stripe", "klarna", "schwab", "fidelity", "vanguard",
    "blackrock", "nasdaq", "nyse", "american", "express", "european", "federal", "national", "royal",
    # form labels of signature blocks, and words that open place names
    "name", "title", "phone", "email", "fax", "address", "date", "signature", "attention", "tel", "mobile",
    "france", "york", "america", "equity", "key", "related", "legal", "marine", "general", "united", "great",
}
PLACE_OPENERS = {"san", "santa", "saint", "st", "new", "hong", "fort", "port", "mount", "los", "las", "el", "lake",
                 "north", "south", "east", "west", "upper", "lower", "cape", "costa", "puerto", "rio", "sao"}
PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "le", "la", "bin", "al", "ter",
             "dos", "das", "y"}
# First names that are also words, places, months or banks: kept only with a surname or title.
AMBIGUOUS = {
    "may", "june", "april", "august", "will", "mark", "bill", "grant", "chase", "sterling", "penny", "rich",
    "paris", "jordan", "jackson", "morgan", "dean", "guy", "art", "pat", "sue", "gene", "max", "les", "joy",
    "hope", "faith", "grace", "summer", "autumn", "dawn", "rose", "iris", "lily", "ruby", "amber", "crystal",
    "jade", "pearl", "ray", "sky", "star", "drew", "gay", "young", "long", "price", "miles", "frank", "lane",
    "dale", "glen", "royal", "major", "king", "prince", "duke", "earl", "baron", "rex", "carter", "cooper",
    "hunter", "mason", "parker", "tyler", "taylor", "spencer", "wells", "cash", "gold", "silver", "victoria",
    "florence", "georgia", "virginia", "carolina", "austin", "dallas", "houston", "phoenix", "denver",
    "sydney", "chelsea", "devon", "kent", "lincoln", "washington", "madison", "dakota", "cleveland", "ford",
    "marcus", "ally", "dow", "china", "india", "israel", "kenya", "bond", "stock", "fed", "don", "the", "an",
    "so", "in", "is", "me", "my", "no", "un", "ma", "sun", "moon", "nice", "jan", "else", "alma", "mercedes",
    "porsche", "lexus", "nova", "tesla", "apple", "amazon", "shell", "total", "capital", "bank", "city",
    "van", "christian", "justice", "liberty", "unity", "trinity", "harmony", "destiny", "august", "sunday",
    "monday", "friday", "easter", "christmas", "noel", "lee", "kim", "ali", "see", "wall", "rolls", "ben",
    "mac", "jean", "bear", "bull", "buck", "hawk", "fox", "wolf", "kit", "colt", "fay", "carol", "ivy",
}
COMPANY_WORDS = {
    "bank", "banks", "stanley", "sachs", "fargo", "schwab", "group", "capital", "securities", "partners",
    "holdings", "financial", "inc", "corp", "corporation", "ltd", "llc", "plc", "co", "company", "fund",
    "funds", "trust", "investments", "investment", "asset", "assets", "management", "street", "avenue",
    "road", "airlines", "motors", "energy", "index", "reserve", "exchange", "insurance", "mutual", "bancorp",
    "lynch", "brothers", "associates", "global", "international", "technologies", "systems", "witter",
    "pharmaceuticals", "foods", "stores", "realty", "mae", "mac", "university", "college", "school",
    "hospital", "foundation", "institute", "county", "city", "state", "river", "lake", "island", "hole",
    "square", "park", "bridge", "center", "centre", "hall", "house", "tower", "plaza", "airport", "jones",
    "industrial", "average", "act", "rule", "day", "award", "prize", "medal", "effect", "model", "ratio",
}
COMPANIES = {"raymond james", "edward jones", "charles river", "john deere", "john lewis", "marks spencer",
             "ally financial", "tim hortons", "ben jerry", "jack henry", "morgan stanley", "charles schwab",
             "wells fargo", "goldman sachs", "merrill lynch", "dean witter", "fannie mae", "freddie mac",
             "dow jones", "johnson johnson", "procter gamble", "warner bros", "david jones"}
# A letter of an alphabet: CJK ideographs, kana, hangul and full-width forms are letters to \w, but a
# name from the gazetteer ends where Chinese text resumes ("Albert Bourla表示" is "Albert Bourla").
_LETTER = r"[^\W\d_\u2E80-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\uFF00-\uFFEF]"
WORD_RE = re.compile(_LETTER + r"(?:" + _LETTER + r"|['’-](?=" + _LETTER + r"))*\.?")


NAME_LISTS = Path(__file__).parent / "names"


@functools.lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """The gazetteer, lower case and unaccented too (gender-guesser's dictionary, read once),
    without the names that are only common English words (see ``scripts/build_name_lists.py``)."""
    import gender_guesser.detector as names

    raw = [n.lower() for n in names.Detector(case_sensitive=False).names if len(n) > 1]
    return (frozenset(raw) | frozenset(_plain(n) for n in raw)) - _name_list("words.txt")


@functools.lru_cache(maxsize=4)
def _name_list(name: str) -> frozenset[str]:
    lines = (NAME_LISTS / name).read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))


def ambiguous(core: str) -> bool:
    """A first name that is also a word, place, month or bank: a name only when confirmed."""
    return core in AMBIGUOUS or core in _name_list("ambiguous.txt")


def _is_cap(word: str) -> bool:
    core = word.rstrip(".")
    return len(core) > 1 and core[0].isupper() and not core.isupper() and any(c.islower() for c in core)


def _is_initial(word: str) -> bool:
    return len(word) == 2 and word[0].isupper() and word[1] == "."


def _surname_like(word: str) -> bool:
    core = word.rstrip(".").lower()
    return (_is_cap(word) and core not in COMPANY_WORDS and core not in TITLES and core not in STOPWORDS) \
        or _is_initial(word)


@detector("PERSON")
def _persons(text: str, cfg: PrivacyConfig) -> Iterator[Span]:
    words = [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]
    i = 0
    while i < len(words):
        word, start, _ = words[i]
        core = word.rstrip(".").lower()
        j = _following_names(words, i + 1, text)
        if core in TITLES and j > i + 1:
            yield Span("PERSON", words[i + 1][1], _end(words[j - 1]))
            i = j
            continue
        if core in PLACE_OPENERS and _is_cap(word):  # San Diego, Hong Kong: the place's words go together
            i = max(j, i + 1)
            continue
        if not _is_cap(word) or core in COMPANY_WORDS or core in STOPWORDS or core in TITLES:
            i += 1
            continue
        cue = CUES.search(text[max(0, start - 30):start]) is not None
        if _known_first_name(core) or cue:
            if word.endswith("."):
                j = i + 1  # a sentence ends here: what follows is not a surname
            phrase = " ".join(w.rstrip(".").lower() for w, _, _ in words[i:j] if w.lower() not in PARTICLES)
            nxt = words[j][0].rstrip(".").lower() if j < len(words) and _adjacent(text, words[j - 1], words[j]) else ""
            if phrase in COMPANIES or nxt in COMPANY_WORDS:  # Morgan Stanley, Jack Henry & Associates
                i = j + 1
                continue
            if j > i + 1 or cue or not ambiguous(core):
                yield Span("PERSON", start, _end(words[j - 1]))
                i = j
                continue
        i += 1


def _known_first_name(core: str) -> bool:
    names = first_names()
    return any(c in names or ("-" in c and c.split("-")[0] in names) for c in {core, _plain(core)})


def _plain(word: str) -> str:
    """Without accents: Gastón -> gaston, for the gazetteer's unaccented spellings."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _end(word: tuple[str, int, int]) -> int:
    """Where a name ends: a sentence's full stop is not part of it, an initial's dot is."""
    text, _, end = word
    return end - 1 if text.endswith(".") and not _is_initial(text) else end


def _adjacent(text: str, left: tuple[str, int, int], right: tuple[str, int, int]) -> bool:
    gap = text[left[2]:right[1]]
    return 0 < len(gap) <= 2 and gap.strip(" &") == ""


def _following_names(words: list[tuple[str, int, int]], k: int, text: str) -> int:
    """The index after up to three surname-like words (initials, particles) from position k."""
    j, taken = k, 0
    while j < len(words) and taken < 3 and _adjacent(text, words[j - 1], words[j]) \
            and "&" not in text[words[j - 1][2]:words[j][1]]:
        word = words[j][0]
        if word.lower() in PARTICLES:  # van der Berg, de la Fontaine: particles need a name after them
            end = j
            while end < len(words) and words[end][0].lower() in PARTICLES:
                end += 1
            if end < len(words) and _is_cap(words[end][0]) and words[end][0].rstrip(".").lower() not in COMPANY_WORDS:
                j = end
                continue
            break
        if not _surname_like(word):
            break
        taken += 1
        j += 1
        if word.endswith(".") and not _is_initial(word):
            break  # "Smith." ends the sentence
    return j
