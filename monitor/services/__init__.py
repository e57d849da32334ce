"""The monitor's services: everything that does I/O for the model (``monitor.model``).

Sockets and WebSockets (the capture, the chat client, the demo traffic), threads and event
loops (the ingest, ``LoopThread``), subprocesses (the capture process, the pre-deploy
check's pytest), SQLite and files (recordings, the run archive, check folders), and the
workspace that starts a runtime and ingests it. Qt-free, like the model: the widgets
(``monitor._qt``) use both; ``tests/test_import_contract.py`` holds the line.
"""
