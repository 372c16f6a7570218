"""Traceability: a unit's genealogy, recalls both ways, assembly-time reports, exports.

``genealogy`` reads one unit (components, steps, defects, nested sub-assemblies),
``recall`` goes from a component lot or serial up to the units and orders that hold
it and from an order down to what its units were built from, ``timing`` summarises
step durations against standard times. All are read-only queries over a session;
``views`` and ``server.api.trace`` are thin adapters around them.
"""
