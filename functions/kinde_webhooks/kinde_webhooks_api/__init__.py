"""KindeWebhookFunction: Kinde webhooks (a user deleted in Kinde loses their data here too)."""
