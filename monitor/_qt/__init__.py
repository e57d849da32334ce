"""The monitor's Qt widgets: thin views over the Qt-free model in ``monitor.model``.

Everything that imports Qt lives under this package (as napari keeps its Qt code in ``_qt``).
"""
