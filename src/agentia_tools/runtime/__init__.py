"""Running the mesh on one machine: Dapr binaries, infrastructure, supervision."""
