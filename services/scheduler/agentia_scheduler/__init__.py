"""The scheduler service: schedules of agent runs and workflows on Dapr's Jobs API."""
