"""The services' internal APIs, one module per service that both it and its callers import
(services never import each other): each module holds the paths, the models its endpoints
answer with, and nothing else."""
