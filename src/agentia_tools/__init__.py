"""Agentia's developer and operator tooling: the `agentia` CLI, the local mesh's supervisor,
chaos experiments and the kind cluster. Services never import it (the building blocks they
import are the ``agentia`` package)."""
