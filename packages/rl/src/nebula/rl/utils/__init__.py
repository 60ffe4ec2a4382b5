"""Utilities scripts import (metric names)."""
