"""The local stack's commands, one module per group; ``local.cli`` parses the command line."""
