"""PlanCheckFunction: the downgrade rule for Kinde's plan selection and for the frontend."""
