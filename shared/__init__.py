"""The event-sourcing kernel every service stands on."""
