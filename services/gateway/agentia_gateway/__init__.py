"""The gateway service: the public HTTP API of the mesh."""
