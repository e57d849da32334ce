"""The monitor's Qt widgets: thin views over the Qt-free model in ``monitor.model``.

Everything that imports Qt lives under this package (DESIGN §2, STYLE: napari's ``_qt``).
"""
