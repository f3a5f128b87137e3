"""Campaigns (SPEC A1, A2, A3, A6, A7): schedules, audiences, budgets, earning multipliers,
actions that earn, participation, results with a control group."""
