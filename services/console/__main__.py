"""`python -m services.console`: serve on $PORT (8010)."""

from shared.serve import serve

serve("services.console.main:build_app", "console", default_port=8010)
