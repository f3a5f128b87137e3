"""Risk review: rules and an anomaly score on redemptions; step-up verification or manual review."""
