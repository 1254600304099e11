"""MediaNest's monitoring stack: configuration, the bundle builder, targets and the CLI."""
