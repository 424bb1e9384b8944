"""Plan Guard shared layer: settings, auth, Kinde entitlements, storage and the plan rule.

Modules are imported one by one (never re-exported here) so each function loads only what it
uses: the usage-count function must stay close to a bare boto3 cold start.
"""
