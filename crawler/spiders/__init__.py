"""Spiders: they route requests and yield items, nothing more."""
