"""The monitor's Qt widgets: thin views over the model (``monitor.model``) and the services
(``monitor.services``).

Everything that imports Qt lives under this package (as napari keeps its Qt code in ``_qt``).
"""
