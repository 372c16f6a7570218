"""Inventory: the stock ledger, on-hand, reservations."""
