"""The plugin seam: registries, the plugin manager and Nebula's own built-in plugin.

Plugin authors import from :mod:`nebula.hookspecs`; the runtime imports the accessors in
:mod:`nebula._plugins.manager`. This ``__init__`` stays empty so that ``nebula.hookspecs``
can import the registry types without pulling in the manager (which imports the hookspecs).
"""
