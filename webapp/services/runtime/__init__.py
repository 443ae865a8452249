"""The chat runtime's side of the product: assignment (SPEC §5), personas (§4) and the runtime API's writes (§6)."""
