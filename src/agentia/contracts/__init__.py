"""The services' internal APIs, one module per service that both it and its callers import
(services never import each other): each module holds the paths, the models its endpoints
answer with, and nothing else."""

from typing import Final

# A run's or thread's id, as clients of the Agent Protocol send them and every service takes.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
