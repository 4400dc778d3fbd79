"""The GitHub edge of WAOOAW: webhooks, the event bus, workers, outputs and the CLI."""
