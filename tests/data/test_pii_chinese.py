"""Chinese personal data: recall on generated values written the ways people write them,
none taken from look-alikes (amounts, order numbers, stock codes, dates, wrong check digits),
and no detection at all on the real Chinese financial text of CFLEB (skipped without it)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from stdnum import luhn
from stdnum.cn import ric, uscc

from fintune.config import DEFAULT_PII_TYPES, PrivacyConfig
from fintune.data.privacy import detect, mask

CFLEB = Path(__file__).resolve().parents[3] / "shared" / "data" / "cfleb_chinese_finance"
CHINESE = ["CN_ID", "CN_USCC", "CN_MOBILE", "CARD"]
ALL = PrivacyConfig(types=CHINESE)


def _ids(rng: random.Random, n: int) -> list[str]:
    out = []
    while len(out) < n:
        body = f"{rng.choice(['110105', '310104', '440305', '330106', '320102'])}{rng.randint(1960, 2005)}" \
               f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
        number = body + ric.calc_check_digit(body + "0")  # stdnum reads the digit slot too
        if ric.is_valid(number):  # a county that existed in the year of birth, as on a real card
            out.append(number)
    return out


def _cards(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        body = "62" + "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([13, 14, 16])))
        out.append(body + luhn.calc_check_digit(body))
    return out


def _credit_codes(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        body = "91" + rng.choice(["110000", "310000", "440300"]) + "".join(rng.choice("0123456789ABCDEFGHJ")
                                                                        for _ in range(9))
        out.append(body + uscc.calc_check_digit(body))
    return out


TEMPLATES = {
    "CN_ID": ["客户身份证号{}，已完成实名认证。", "身份证：{}", "借款人{}申请贷款"],
    "CARD": ["请将款项转入卡号{}。", "银行卡{}被冻结", "尾号为{}的借记卡"],
    "CN_USCC": ["公司统一社会信用代码为{}。", "统一社会信用代码：{}"],
    "CN_MOBILE": ["联系电话{}。", "手机：{}，请回电", "致电{}咨询"],
}


def _mobiles(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        digits = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
        form = rng.choice(["{}", "{0}-{1}-{2}", "+86 {}", "86-{0}-{1}-{2}", "{0} {1} {2}"])
        parts = (digits[:3], digits[3:7], digits[7:])
        out.append(form.format(*parts) if "{0}" in form else form.format(digits))
    return out


VALUES = {"CN_ID": _ids, "CARD": _cards, "CN_USCC": _credit_codes, "CN_MOBILE": _mobiles}


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_every_generated_value_is_found_whole_in_chinese_sentences(kind: str) -> None:
    rng = random.Random(kind)
    for value in VALUES[kind](rng, 200):
        text = rng.choice(TEMPLATES[kind]).format(value)
        spans = [(s.kind, text[s.start:s.end]) for s in detect(text, ALL)]
        assert spans == [(kind, value)], (text, spans)


LOOK_ALIKES = [
    "贵州茅台(600519)成交额13812345678元，换手率1.2%。",  # an amount, a stock code
    "订单号2023123112345678901已发货",  # a longer digit run
    "成交量13900000000股",
    "营收￥15012345678",
    "2021年12月31日，公司公告",
    "身份证号110105194912310021",  # a wrong check digit (the right one is X)
    "代码91110000100000589B",  # a wrong check character
    "卡号6222021234567890123",  # fails Luhn
    "11.45-11.35-11.25-11.05",  # price levels in a forum post
    "电话号码是1381234567",  # ten digits
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert detect(text, ALL) == []


def test_the_checksummed_and_the_mobile_types_are_on_by_default() -> None:
    assert set(CHINESE) <= set(DEFAULT_PII_TYPES)
    assert mask("手机13812345678，身份证11010519491231002X", PrivacyConfig()) == "手机<CN_MOBILE>，身份证<CN_ID>"


@pytest.mark.skipif(not CFLEB.is_dir(), reason="needs ../shared/data/cfleb_chinese_finance")
def test_nothing_is_taken_from_real_chinese_financial_text() -> None:
    # 36,714 forum posts, news items and relation sentences: none holds a Chinese identifier, so
    # any detection is a false positive (hand-label and add it here if a detector changes).
    texts = [r[0] for name in ("finfe", "finnl") for r in json.loads((CFLEB / f"{name}_train.json").read_text())]
    texts += [r[3] for r in json.loads((CFLEB / "finre_train.json").read_text())]
    found = [(t, s.kind) for t in texts for s in detect(t, ALL)]
    assert len(texts) == 36_714 and found == []


def test_a_western_name_in_chinese_text_ends_where_the_chinese_resumes() -> None:
    text = "辉瑞公司CEO Albert Bourla表示，公司将在三月推出疫苗"
    assert mask(text, PrivacyConfig(types=["PERSON"])) == "辉瑞公司CEO <PERSON>表示，公司将在三月推出疫苗"


def test_full_width_digits_are_normalized_before_masking_and_the_script_is_kept() -> None:
    from fintune.config import CleanConfig, DataConfig
    from fintune.data.columns import clean_cell

    cfg = DataConfig(train="t.csv", text_column="text")
    # Full-width digits and letters become ASCII (NFKC), so the identity number is found; the
    # ideographs stay, traditional ones too (no conversion to simplified).
    cleaned = clean_cell("身份證號１１０１０５１９４９１２３１００２Ｘ，帳戶凍結", cfg, "t.csv", 1)
    assert cleaned == "身份證號<CN_ID>,帳戶凍結"
    assert CleanConfig().unicode_nfkc


def test_a_chinese_character_counts_as_a_word_in_the_data_report() -> None:
    from fintune.data.report import text_length, word_count

    assert word_count("公司净利润同比增长30%") == 10 and word_count("Apple beats 估计") == 4
    assert text_length(["股价上涨", "公司 亏损"], None) == {"unit": "words", "mean": 4.0, "p50": 4.0, "p95": 4.0,
                                                        "max": 4}


def test_the_digits_of_a_decimal_number_are_no_card() -> None:
    # 8444218515250481 passes Luhn; after "0." it is a fraction, not a card.
    assert detect("price 0.8444218515250481 today", ALL) == []
    assert mask("card 4111 1111 1111 1111. thanks", ALL) == "card <CARD>. thanks"
