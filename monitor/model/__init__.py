"""The monitor's model: pure data and logic — the event store, the observation session,
presentation, the chat conversation, the timeline's scene maths, the recording format, the
pre-deploy check's command, progress, verdict and report text.

No sockets, subprocesses, threads, SQLite, file I/O, pytest or Qt here (``tests/
test_import_contract.py``): the I/O is ``monitor.services``, the widgets ``monitor._qt``.
What a service must hand the model (a lock, a frame gate, a run archive) is a protocol here.
"""
