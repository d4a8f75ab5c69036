-- Portal instances keep copies of sessions and of who-belongs-where in memory (src/db/shared_cache.rs).
-- Every change to those rows tells every instance, through LISTEN/NOTIFY on 'portal_cache', which
-- copy to drop. The notice is sent when the change commits, whoever made it (a page, the CLI, a job).

CREATE FUNCTION portal_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
    row_key text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_key := to_jsonb(OLD) ->> TG_ARGV[1];
    ELSE
        row_key := to_jsonb(NEW) ->> TG_ARGV[1];
    END IF;
    PERFORM pg_notify('portal_cache', kind || ':' || row_key);
    -- A row moved from one key to another (a membership given to someone else) tells both.
    IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) ->> TG_ARGV[1]) IS DISTINCT FROM row_key THEN
        PERFORM pg_notify('portal_cache', kind || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER session_changed AFTER INSERT OR UPDATE OR DELETE ON tower_sessions.session
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('session', 'id');

CREATE TRIGGER user_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('user', 'id');

CREATE TRIGGER membership_changed AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('user', 'user_id');

-- An organization's name or slug is part of every member's copy; renames are rare, so one
-- notice drops every copy.
CREATE TRIGGER organization_changed AFTER UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION portal_cache_notify('organization', 'id');
