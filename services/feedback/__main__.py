"""`python -m services.feedback`: serve on $PORT (8004)."""

from shared.serve import serve

serve("services.feedback.main:build_app", "feedback", default_port=8004)
