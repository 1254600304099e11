"""The Pulumi program: read the stack's config, build the bundle, hand it to the target.

Everything generated comes from `stack.bundle.build`; this file only wires it to Pulumi.
"""

import pulumi

from rules.problems import Severity
from stack.bundle import build
from stack.config import from_pulumi

config = from_pulumi()
bundle = build(config)
errors = [p.render() for p in bundle.problems() if p.severity >= Severity.ERROR]
if errors:
    # Deploying rules that fail the static checks would ship alerts that never fire.
    raise ValueError("the generated rules have problems:\n" + "\n".join(errors))

pulumi.export("environment", config.environment)
pulumi.export("ruleFiles", bundle.rule_paths)
pulumi.export("alerts", sorted({r.name for f in bundle.rule_files for g in f.groups for r in g.rules
                               if hasattr(r, "alert")}))
