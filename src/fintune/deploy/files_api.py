"""``/v1/predict/files``: scans, PDFs and recordings uploaded, read into text (data.files) and
scored like ``/v1/predict``'s texts, behind the same API key and limits."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fintune.config import FilesConfig
from fintune.deploy.limits import UPLOAD_PATH, limit_error
from fintune.deploy.schemas import Prediction, PredictRequest
from fintune.deploy.service import Service


class FileResult(BaseModel):
    file: str = Field(description="the uploaded file's name")
    kind: str | None = Field(None, description="image, pdf or audio")
    confidence: float | None = Field(None, description="the reader's mean confidence (OCR lines, speech segments)")
    text: str | None = Field(None, description="the text read, as the model scored it")
    error: str | None = Field(None, description="why the file could not be read (it was not scored)")
    prediction: Prediction | None = None


class FilesPredictResponse(BaseModel):
    request_id: str | None = Field(None, description="as /v1/predict's (absent when no file could be read)")
    model: str
    files: list[FileResult]


def files_router(service: Service, require_key: Callable[..., Any], settings: FilesConfig | None) -> APIRouter:
    """The upload endpoint of a text model; it reads files as the run's ``data.files`` says
    (default settings for a model trained on text)."""
    from fintune.data.ingest import SUFFIXES, read_files

    reading = settings or FilesConfig()
    router = APIRouter(dependencies=[Depends(require_key)])

    @router.post(UPLOAD_PATH, response_model=FilesPredictResponse, response_model_exclude_none=True)
    async def predict_files(files: list[UploadFile] = File(..., description="images, PDFs or audio")) \
            -> FilesPredictResponse:
        """Each file read into text (OCR, PDF text layer, speech-to-text) and scored; a file
        that cannot be read gets an error of its own, the others are still scored."""
        if len(files) > service.cfg.max_texts:
            raise limit_error(422, "max_texts", service.cfg.max_texts, len(files), "too many files in one request")
        names = [Path(f.filename or "upload").name for f in files]
        unsupported = [n for n in names if Path(n).suffix.lower() not in SUFFIXES]
        if unsupported:
            raise HTTPException(415, {"error": f"unsupported file type: {', '.join(unsupported)} (the server reads "
                                               f"{', '.join(sorted(SUFFIXES))})"})
        with tempfile.TemporaryDirectory(prefix="fintune-upload-") as tmp:
            # Saved under numbered names: a client's file name never becomes a path here.
            paths = [Path(tmp) / f"{i:04d}{Path(n).suffix.lower()}" for i, n in enumerate(names)]
            for upload, path in zip(files, paths, strict=True):
                path.write_bytes(await upload.read())
            readings = await run_in_threadpool(read_files, paths, reading)
        results = [FileResult(file=n, kind=r.kind, confidence=r.confidence, text=r.text if r.error is None else None,
                              error=r.error) for n, r in zip(names, readings, strict=True)]
        readable = [res for res in results if res.error is None]
        if not readable:
            return FilesPredictResponse(model=service.name, files=results)
        scored = await service.predict(PredictRequest(texts=[res.text or "" for res in readable]))
        for res, prediction in zip(readable, scored.predictions, strict=True):
            res.prediction = prediction
        return FilesPredictResponse(request_id=scored.request_id, model=service.name, files=results)

    return router
