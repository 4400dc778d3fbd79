"""What `waooaw demo` (bot/demo_cli.py) brings along: a sample change and a scripted model.

`sample/` holds the sample change as patches and `scripted_answers.yaml` what the scripted
model answers; neither is Python, so this repository's own review never takes the sample's
planted findings for its own.
"""
