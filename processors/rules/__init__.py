"""Alert rules: typed rule sets (from RuleSet records or a rules file) and a pure, media-time rule engine."""
