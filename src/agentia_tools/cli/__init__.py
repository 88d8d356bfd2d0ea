"""The `agentia` command line."""
