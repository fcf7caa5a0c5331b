"""What a trial runs: stages, the Ray Train worker loop, robust methods, tasks, data and models.

This package never imports ``orchestrator``. Registry modules (``catalog``, ``tasks``,
``robust``) stay importable without torch so the sweep driver can validate a space file in
well under a second, before Ray starts.
"""
