"""Spiders: one base spider per catalogue API shape, a small subclass per catalogue."""
