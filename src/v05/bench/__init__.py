"""Benchmarks with JSON, Markdown and PNG reports."""
