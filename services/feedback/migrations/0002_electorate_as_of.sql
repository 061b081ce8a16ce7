-- The point of membership's log a campaign's electorate was taken at (`membership:1234`, CampaignOpened).
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS electorate_as_of text;
