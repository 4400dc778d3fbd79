"""The AgentFactory: agents from declarative specs (`waooaw/agent/v1`), validated and tested before they run.

`spec` (the model and loading, with FILE:LINE errors) and `checks` (what the shape cannot say);
`templates` (sandboxed Jinja, outside text made inert); `catalogue` (directories of specs, all or
nothing); `agent` (`build_agent`: the WowAgent of a spec, down the decision ladder); `reads` (what
the runtime fetches first); `run` (one run, whoever answers); `intents` (an answer becomes the
declared, capped intents and nothing else); `examples` (`waooaw agents test`); `skeleton` and
`propose` (`agents new`, and drafts from a WowDomain spec). See docs/writing-an-agent-spec.md.
"""
