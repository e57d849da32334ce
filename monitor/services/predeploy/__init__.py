"""The pre-deploy check's I/O: ``suite`` finds the suite and its Python, ``preflight``
probes the target, ``runner`` drives one run (``CheckRun``, a pytest subprocess),
``run_folders`` writes and reads run folders and the history, ``headless`` is
``agent-monitor check``, ``collection_plugin`` is the pytest plugin the subprocess loads.
What is decided and written (command, progress, verdict, report) is
``monitor.model.predeploy`` (pure).

Nothing is imported here: ``agent-monitor --help`` and the pytest plugin this package
gives the suite's subprocess (``collection_plugin``) stay fast.
"""
