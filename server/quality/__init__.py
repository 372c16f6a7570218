"""Quality: checks and their results, non-conformances (NCR), rework with component
replacement, quarantine, first-pass yield and control charts (docs/quality.md).

``results`` (the station's checks and results, database only) is what the station
workflow's adapters call; ``ncr`` and ``rework`` are the services behind the pages;
``figures`` the yield, Pareto and control-chart figures; ``views`` the pages and the
tablet's check forms.
"""
