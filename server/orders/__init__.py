"""Orders: intake, available-to-promise, release into units, cancel, ship.

``service`` holds the life cycle, ``atp`` the pure allocation planner, ``reservations``
the per-unit ledger reservations, ``intake`` the one validation for every channel.
"""
