"""`python -m stack sandbox`: start the sandbox, print where everything is (what each component
serves, and a command asking it), apply a scenario, print each notification as it arrives, and
stop everything on Ctrl-C or after `--duration`.

A component that does not start (its binary refusing an argument of its spec, say) is reported
with the tail of its log, and the sandbox exits 1. A component that dies is reported at once (a
line naming it and how it ended, then the tail of its log); the sandbox then stops and exits 1,
or, with `--restart`, starts it again after 1 s, 2 s, 4 s... (at most 30 s), and exits 1 at its
fifth death within 5 minutes."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from rules.conventions import duration_seconds
from stack.sandbox.scenarios import SCENARIOS, Scenario


def add_parser(commands: Any) -> None:
    sandbox = commands.add_parser("sandbox", help="run the stack on real binaries on loopback (no Docker needed)")
    sandbox.add_argument("--scenario", choices=sorted(SCENARIOS), default="healthy",
                         help="the fault to inject once everything is up")
    sandbox.add_argument("--duration", type=_duration, help="stop after this long (e.g. 15m); default: until Ctrl-C")
    sandbox.add_argument("--alertmanagers", type=int, choices=(1, 3), default=1,
                         help="one Alertmanager, or a gossip cluster of three")
    sandbox.add_argument("--compressed", action="store_true",
                         help="compress time: SLOs over 5 days instead of 30 (a page resolves 5 minutes after "
                              "recovery), Alertmanager re-notifies a group after 10s, Prometheus resends after 5s")
    sandbox.add_argument("--restart", action="store_true",
                         help="restart a component that dies (after 1s, 2s, 4s... at most 30s; its fifth death "
                              "within 5 minutes stops the sandbox) instead of stopping the sandbox (exit 1)")


def _duration(text: str) -> float:
    try:
        return duration_seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the sandbox like Ctrl-C: every process stopped


def apply(sandbox: Any, scenario: Scenario) -> None:
    """Inject a scenario's faults into a running `Sandbox`."""
    if scenario.faults:
        sandbox.inject(**scenario.faults)
    for name in scenario.stopped:
        sandbox.supervisor.stop(name)


def run(args: argparse.Namespace) -> int:
    # The sandbox's machinery loads only for this command.
    from stack.sandbox.processes import ProcessDied, ProcessFailed, RestartPolicy
    from stack.sandbox.run import Sandbox

    signal.signal(signal.SIGTERM, _stop)
    scenario = SCENARIOS[args.scenario]
    died = None
    try:
        with Sandbox(alertmanagers=args.alertmanagers, compressed=args.compressed,
                     restart=RestartPolicy() if getattr(args, "restart", False) else None) as sandbox:
            print(f"sandbox: up in {sandbox.started_seconds:.1f} s, files in {sandbox.root}")
            for endpoint in sandbox.endpoints():
                print(f"  {endpoint.name:<16} {endpoint.url}")
                print(f"  {'':<16} {endpoint.serves}")
                if endpoint.command:
                    print(f"  {'':<16} try: {endpoint.command}")
            apply(sandbox, scenario)
            print(f"sandbox: scenario {scenario.name}: {scenario.description}")
            print("sandbox: notifications as they arrive (Ctrl-C stops everything):")
            deadline = time.monotonic() + args.duration if args.duration else None
            seen = 0
            while died is None and (deadline is None or time.monotonic() < deadline):
                notifications = sandbox.notifications()
                for note in notifications[seen:]:
                    for alert in note["payload"].get("alerts", []):
                        labels = alert.get("labels", {})
                        print(f"  {time.strftime('%H:%M:%S')} {note['receiver']:<16} {alert.get('status'):<9} "
                              f"{labels.get('alertname')} {labels.get('severity', '')}")
                seen = len(notifications)
                died = sandbox.supervisor.death(timeout=1)  # reported already, with its log's tail
    except ProcessDied as error:  # while the others started
        died = str(error)
    except ProcessFailed as error:
        # Did not start (e.g. its binary refused an argument of its spec): the whole report, with
        # the tail of its log, where the binary says why.
        print(f"sandbox: not started: {error}")
        return 1
    except KeyboardInterrupt:
        pass
    if died is not None:
        print(f"sandbox: stopped: {died}")
        return 1
    print("sandbox: stopped")
    return 0
