"""Helpers shared by test modules: real services started per test session."""
