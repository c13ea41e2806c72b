"""The embedded demo: a scripted executor so the whole loop runs with no API key (``make demo``)."""
