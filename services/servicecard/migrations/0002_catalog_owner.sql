-- A catalogue item belongs to the organisation that offers it (its staff may withdraw it); none: the federation.
ALTER TABLE catalog_items ADD COLUMN IF NOT EXISTS org_id uuid;
