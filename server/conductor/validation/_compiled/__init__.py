"""Generated fast validators (see conductor.validation.compiled)."""
