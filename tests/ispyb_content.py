"""The order-free ISPyB content and its diff, for the tests (the helper lives in the product)."""

from __future__ import annotations

from tiltstream.connectors.ispyb.content import Row, content_differences, ispyb_content

__all__ = ["Row", "content_differences", "ispyb_content"]
