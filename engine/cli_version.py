"""Versions, importable by the CLI without loading the engine."""

VERSION = "0.1.0"
API_VERSION = "v1"
