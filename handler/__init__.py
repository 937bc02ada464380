"""Entry points that adapt the engine to its callers: the CLI, and later Lambda and the Action."""
