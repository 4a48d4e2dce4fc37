"""The server's ``/docs`` page, offline: Swagger UI from installed files, not a CDN."""

from __future__ import annotations

from fastapi import FastAPI

DOCS_ASSETS = "/docs-assets"


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI 5's JavaScript and CSS served from the files the
    ``fastapi-offline`` package installs (FastAPI's self-hosting recipe), so the page works on
    a machine with no internet. (Swagger UI 4 cannot render FastAPI's OpenAPI 3.1.)"""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="fintune: API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")
