"""``triggerfish doctor``: find the stage where a connection fails and say how to fix it.

Each diagnosis returns a list of :class:`~triggerfish.doctor.report.Check` records; the CLI renders
them as a colour table or as ``{"checks": [...]}`` JSON.
"""

from triggerfish.doctor.report import Check, Status

__all__ = ["Check", "Status"]
