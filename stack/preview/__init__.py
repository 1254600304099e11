"""`python -m stack diff`: what a change really changes, for a pull request's reviewer.

Both trees are exported with the same command (`python -m stack export`, run with each tree's own
code: the base from a temporary git worktree), then compared section by section, each section a
pure function of the two exported trees (one module per section):

- rules.py      alerts and recording rules; receivers and unit tests of added/changed alerts
- routing.py    receivers, routes, inhibitions, timings; alerts now reaching another receiver
- slos.py       objectives, windows and the detection-time table
- dashboards.py dashboards and panels
- services.py   the stack per environment: images, retention, replicas, resources, ports, security
- problems.py   static check problems the change introduces
"""
