"""The pre-deploy check: run the mission-critical suite against what the monitor watches.

Qt-free. ``command`` builds the pytest invocation (pure), ``progress`` parses the progress
lines it streams (pure), ``verdict`` decides GO / NO-GO / ERROR (pure), ``report`` writes
and reads run folders and the history, ``preflight`` probes the target, ``runner`` drives
one run (``CheckRun``), ``headless`` is ``agent-monitor check``.

Nothing is imported here: ``agent-monitor --help`` and the pytest plugin this package
gives the suite's subprocess (``collection_plugin``) stay fast.
"""
