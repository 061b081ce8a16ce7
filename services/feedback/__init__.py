"""Feedback: ratings of redemptions, anonymous evaluation campaigns, members' requests and complaints."""
