"""reid-example: a complete, minimal reidcore plugin (see docs/writing-a-plugin.md)."""

__version__ = "0.1.0"
