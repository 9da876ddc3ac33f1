"""Shared plumbing of the suite: errors, version, run-directory helpers."""

__version__ = "0.1.0"
