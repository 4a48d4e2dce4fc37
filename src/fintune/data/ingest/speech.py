"""Audio (WAV, MP3, FLAC, OGG, M4A) transcribed by the catalogue's Whisper model in faster-whisper."""

from __future__ import annotations

import math
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fintune.config.files import FilesConfig
from fintune.data.ingest.base import Extraction, joined
from fintune.errors import FintuneError


@lru_cache(maxsize=2)
def _whisper(name: str) -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise FintuneError("speech-to-text needs fintune[audio] (faster-whisper): pip install 'fintune[audio]'") \
            from None
    from fintune.catalogue import verified_folder

    # int8 on the CPU: a quarter of fp32's memory and the fastest CTranslate2 kernels there.
    threads = max(1, min(os.cpu_count() or 1, 8))
    return WhisperModel(str(verified_folder(name)), device="cpu", compute_type="int8", cpu_threads=threads)


class AudioReader:
    kind = "audio"
    suffixes = (".wav", ".mp3", ".flac", ".ogg", ".m4a")

    def signature(self, settings: FilesConfig) -> str:
        return f"{settings.speech}:{settings.language or 'detect'}:beam5"

    def read(self, path: Path, settings: FilesConfig) -> Extraction:
        started = time.perf_counter()
        segments, info = _whisper(settings.speech).transcribe(str(path), language=settings.language, beam_size=5)
        # A segment's confidence: the probability of its tokens, exp(mean log-probability).
        pieces = [{"text": s.text, "confidence": math.exp(s.avg_logprob), "start": s.start, "end": s.end}
                  for s in segments]
        text, parts = joined(pieces, " ")
        return Extraction(str(path), self.kind, self.signature(settings), text, parts,
                          time.perf_counter() - started, language=info.language)
