"""Nebula data: streaming datasets on Arrow blocks, and parallel iterators (``nebula.data.iter``)."""

from __future__ import annotations
