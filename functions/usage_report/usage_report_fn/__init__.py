"""UsageReportFunction: every change of a customer's count reaches Kinde billing as metered usage."""
