"""The mapping pack: YAML under mappings/ loaded with line numbers into strict pydantic models."""
