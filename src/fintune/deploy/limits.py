"""The server's refusals of requests over its limits, shared by every endpoint."""

from __future__ import annotations

from fastapi import HTTPException

UPLOAD_PATH = "/v1/predict/files"  # scans and recordings: serve.max_upload_bytes, not max_body_bytes


def limit_error(status: int, limit: str, allowed: int, got: int | None, what: str) -> HTTPException:
    """A refusal that names the limit, what it allows, and what the request had."""
    detail = {"error": f"{what}: at most {allowed} allowed (serve.{limit})" + (f", got {got}" if got else ""),
              "limit": limit, "allowed": allowed, "got": got}
    return HTTPException(status_code=status, detail=detail)
