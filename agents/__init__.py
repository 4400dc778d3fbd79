"""The WAOOAW platform and its agents. Nothing here imports from `bot`."""
