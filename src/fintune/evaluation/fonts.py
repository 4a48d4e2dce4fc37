"""A font that draws Chinese, Japanese and Korean labels: matplotlib's default (DejaVu Sans)
has no CJK glyphs and draws each character as an empty box. Evaluation plots (class names on
a confusion matrix) and the graph's pictures (entity names) use it."""

from __future__ import annotations

import re
from functools import lru_cache

CJK_RE = re.compile(r"[\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uAC00-\uD7AF]")
# Families with CJK glyphs, in order of preference: Debian's fonts-wqy-microhei and
# fonts-noto-cjk, then what Windows and macOS ship.
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC",
                "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
INSTALL_HINT = ("no CJK font is installed, so Chinese labels would be drawn as boxes: install one, e.g. "
                "`apt-get install fonts-wqy-microhei` (Debian/Ubuntu)")


def has_cjk(labels: list[str]) -> bool:
    """Whether any label holds a Chinese, Japanese or Korean character."""
    return any(CJK_RE.search(label) for label in labels)


@lru_cache(maxsize=1)
def cjk_family() -> str | None:
    """The first installed family of :data:`CJK_FAMILIES`, or None."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if not {f.name for f in manager.ttflist} & set(CJK_FAMILIES):
        # matplotlib's font cache may predate the font's installation: add CJK fonts it has not seen.
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(path):
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # a font file matplotlib cannot read
                    continue
    installed = {f.name for f in manager.ttflist}
    return next((family for family in CJK_FAMILIES if family in installed), None)


_CJK_FILES = re.compile(r"(?i)wqy|notosanscjk|notoserifcjk|sourcehan|simhei|msyh|pingfang|arialuni")


def with_cjk_fallback(plt: object) -> None:
    """Let every later figure fall back to the CJK font for glyphs DejaVu Sans lacks (Latin text
    keeps its usual font); nothing changes where no CJK font is installed."""
    family = cjk_family()
    if family is not None:
        plt.rcParams["font.family"] = ["DejaVu Sans", family]  # type: ignore[attr-defined]
