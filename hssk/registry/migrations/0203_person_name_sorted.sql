-- Name words in alphabetical order: matches order variants ('Văn An Nguyễn' = 'Nguyễn Văn An').
ALTER TABLE person ADD COLUMN name_sorted text;
CREATE INDEX person_sorted_birth ON person (name_sorted, birth_date);
