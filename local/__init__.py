"""The local stack: Kinde stand-in, embedded DynamoDB, template-driven API gateway (``make dev``)."""
