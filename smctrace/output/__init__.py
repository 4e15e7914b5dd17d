"""Outputs: event sinks that render pipeline events (text, JSON lines, tables)."""
