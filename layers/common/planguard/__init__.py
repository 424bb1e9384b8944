"""Plan Guard shared layer: settings, auth, Kinde entitlements, storage and the plan rule.

Modules are imported one by one (never re-exported here) so each function loads only what it
uses: the usage-count function must stay close to a bare boto3 cold start.
"""

from planguard.json_logs import hold_sdk_logs_at_warning

# Before any module builds an SDK client: nothing secret from the SDK's debug logging, whichever
# function imports the layer first.
hold_sdk_logs_at_warning()
