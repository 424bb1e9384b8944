"""UsageCountFunction: the tracked-account count the Kinde plan-change workflow reads."""
