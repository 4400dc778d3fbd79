"""The AgentFactory: agents from declarative specs (`waooaw/agent/v1`), validated and tested before they run.

`spec` (the model and loading, with FILE:LINE errors), `checks` (what the shape cannot say),
`templates` (sandboxed Jinja), `catalogue` (directories of specs, all or nothing). See
docs/writing-an-agent-spec.md.
"""
