"""`waooaw demo`: the three user paths end to end, offline, in one command (see bot/demo/run.py).

`sample/` holds the sample change as patches; `scripted_answers.yaml` what the scripted
model answers; neither is Python, so neither is reviewed as this repository's code.
"""

from bot.demo.run import DemoError, run_demo

__all__ = ["DemoError", "run_demo"]
