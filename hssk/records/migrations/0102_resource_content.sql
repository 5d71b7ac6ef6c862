-- The content of a resource body: everything but the server-assigned meta.versionId and
-- meta.lastUpdated (and an empty meta). Two bodies with equal content are the same version.
CREATE FUNCTION resource_content(body jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN (body -> 'meta') IS NULL THEN body
    WHEN ((body -> 'meta') - 'versionId' - 'lastUpdated') = '{}'::jsonb THEN body - 'meta'
    ELSE jsonb_set(body, '{meta}', (body -> 'meta') - 'versionId' - 'lastUpdated')
  END
$$;
