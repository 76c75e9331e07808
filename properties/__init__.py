"""pfmodel's property library (installed as ``pfmodel.library``).

Each ``*.py`` file here declares properties with ``pfmodel.properties.prop``; see
``pfmodel/properties.py`` for the format.  ``pfmodel check`` loads every file.
"""
