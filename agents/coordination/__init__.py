"""CoE coordinators: a task routed by the CoE's RACI matrix to one Responsible agent.

`raci.py` loads and checks `agents/specs/<coe>/raci.yaml`; `assignments.py` holds the lock (one
`task_assignments` row per task) and the load and deadlines the coordinators read; `coordinator.py`
is the agent, one class made per CoE. docs/messages.md explains them.
"""
