"""PlanCheckFunction: the downgrade rule for ``sam local invoke``, the stand-in and ``GET /plan-check``.

In production the rule runs in Kinde's plan-change workflow (``kinde/``), which calls only the
usage-count routes; this function runs the same rule (``planguard.plan_rule``) for ``sam local
invoke``, the local Kinde stand-in's plan changes, and the frontend's ``GET /plan-check``.
"""
