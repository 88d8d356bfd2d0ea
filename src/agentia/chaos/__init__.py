"""Chaos experiments on the mesh, in the Chaos Toolkit format, with Agentia's own actions
and probes (``agentia.chaos.actions``, ``agentia.chaos.probes``)."""
