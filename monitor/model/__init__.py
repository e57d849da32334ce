"""The monitor's Qt-free model: the event store, the observation session and ingest.

Nothing in this package imports Qt; the widgets in ``monitor._qt`` are thin views over it.
"""
