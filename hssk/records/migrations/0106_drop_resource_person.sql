-- `resource_key (person_id, type, id)` serves every read of a person's records (the book, a
-- search by patient, with or without type): both indexes lead with (person_id, type), and a
-- person's rows of one type are few enough to sort by date after reading them (the same plans
-- and timings were measured without it). The second index cost ~46 bytes per resource
-- (11 MB for 246 k resources; ~1.4 GB for Hà Nội's 30 M) and one more index write per row.
DROP INDEX IF EXISTS resource_person;
