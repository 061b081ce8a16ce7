"""Service card: cards that follow the member, the service catalogue, redemptions and yearly quotas."""
