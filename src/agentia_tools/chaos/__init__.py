"""Chaos experiments on the mesh, in the Chaos Toolkit format, with Agentia's own actions
and probes (``agentia_tools.chaos.actions``, ``agentia_tools.chaos.probes``)."""
