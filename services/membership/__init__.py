"""Membership: organisations, online applications, real-name members, the member dossier."""
