"""spyglass's library: one scan of one Docker endpoint against its images' registries.

The public entry is ``engine.scan.scan``; ``docs/architecture.md`` maps the modules.
"""
