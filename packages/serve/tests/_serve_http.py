"""HTTP helpers the serve tests share."""

from __future__ import annotations

import urllib.error
import urllib.request


def get_status(url: str) -> tuple[int, bytes]:
    """``(status, body)`` of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
