-- Organisations and members now live in the kernel's directory (shared/migrations/0005_directory.sql), rebuilt
-- from the log at start; transfer's own copies go.
DROP TABLE IF EXISTS organizations;
DROP TABLE IF EXISTS members;
