-- Who asked for a transfer, as their token named them: the requester may cancel it (services/transfer/access.py).
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS requester text;
