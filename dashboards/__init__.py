"""Grafana dashboards as typed Python, checked against the same metric catalog as the rules."""
