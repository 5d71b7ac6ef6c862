-- Folded (accent-free, lower-case) words for text search, e.g. Patient names.
ALTER TABLE resource ADD COLUMN terms text;
