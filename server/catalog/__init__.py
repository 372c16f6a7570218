"""Catalog: parts, configurable products, their options, BOM and routing."""
