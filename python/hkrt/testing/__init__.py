"""Test helpers: a real local quote server in the Sina and Tencent formats."""

from hkrt.testing.quote_server import (
    QuoteServer,
    ServedRequest,
    parse_request_path,
    render_body,
    render_qq,
    render_sina,
)

__all__ = ["QuoteServer", "ServedRequest", "parse_request_path", "render_body", "render_qq", "render_sina"]
