-- Blocking key for records whose given name has a typing error: family name + full birth date.
CREATE INDEX person_family_birth ON person (family_key, birth_date);
