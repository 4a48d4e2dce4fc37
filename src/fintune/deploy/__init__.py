"""From a finished run to production: export (ONNX, int8), an HTTP server, drift monitoring."""

from fintune.deploy.settings import deploy_config

__all__ = ["deploy_config"]
