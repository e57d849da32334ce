"""The pre-deploy check: run the mission-critical suite against what the monitor watches.

Pure and Qt-free: ``command`` builds the pytest invocation, ``progress`` parses the progress
lines it streams, ``verdict`` decides GO / NO-GO / ERROR, ``report`` renders the Markdown
report, the JUnit XML and the history's records, ``target`` says what is checked,
``findings`` reads the live findings of a check's time span. Running it (preflight, the
pytest subprocess, run folders, ``agent-monitor check``) is ``monitor.services.predeploy``.

Nothing is imported here: ``agent-monitor --help`` stays fast.
"""
