"""Long-lived agents as Dapr Workflows: workflow code (``workflows.py``), activity code
(``activities.py``), their typed inputs and outputs (``contracts.py``), and registration
(``register.py``). Hosted by agent-runner's workflow worker."""
