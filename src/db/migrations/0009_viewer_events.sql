-- Viewer events (the viewerEvents subscription): what happened to an account, announced on
-- authgraph_changes as e:<user id>:<TYPE> or e:<user id>:SESSION_REVOKED:<session id>, beside
-- migration 0008's payloads (kept as they are). One event per cause, whatever the order of the
-- statements that carry it out: disabling an account also moves its cut-off and revokes every
-- session, a password change moves the cut-off too; each must be announced as what it is, not
-- as a flood of SESSION_REVOKED. So row triggers only note what changed for a user in the
-- transaction (a transaction-local setting), and deferred triggers, run at commit once every
-- statement has, announce the strongest cause: ACCOUNT_DISABLED, else PASSWORD_CHANGED, else
-- SIGNED_OUT_EVERYWHERE; a session revoked on its own is SESSION_REVOKED. PostgreSQL delivers a
-- payload sent twice in one transaction once, so every deferred firing may send it. Triggers,
-- not the services: no write path (the app, the CLI, an operator's SQL) can forget to announce.
CREATE FUNCTION authgraph_viewer_marks_setting(user_id uuid) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'authgraph.viewer_' || replace(user_id::text, '-', '')
$$;
--> statement-breakpoint
CREATE FUNCTION authgraph_viewer_marks(user_id uuid) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(current_setting(authgraph_viewer_marks_setting(user_id), true), '')
$$;
--> statement-breakpoint
-- D: disabled or deleted, P: password changed, C: cut-off moved (signed out everywhere).
CREATE FUNCTION authgraph_note_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  marks text := authgraph_viewer_marks(OLD.id);
BEGIN
  IF TG_OP = 'DELETE' THEN
    marks := marks || 'D';
  ELSE
    IF OLD.active AND NOT NEW.active THEN marks := marks || 'D'; END IF;
    IF OLD.password_hash IS DISTINCT FROM NEW.password_hash THEN marks := marks || 'P'; END IF;
    IF OLD.tokens_valid_after IS DISTINCT FROM NEW.tokens_valid_after THEN marks := marks || 'C'; END IF;
  END IF;
  PERFORM set_config(authgraph_viewer_marks_setting(OLD.id), marks, true);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_announce_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  marks text := authgraph_viewer_marks(OLD.id);
  cause text := CASE
    WHEN strpos(marks, 'D') > 0 THEN 'ACCOUNT_DISABLED'
    WHEN strpos(marks, 'P') > 0 THEN 'PASSWORD_CHANGED'
    WHEN strpos(marks, 'C') > 0 THEN 'SIGNED_OUT_EVERYWHERE'
  END;
BEGIN
  IF cause IS NOT NULL THEN PERFORM pg_notify('authgraph_changes', 'e:' || OLD.id || ':' || cause); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- A session revoked (or a live one deleted) in a transaction that did none of the above.
CREATE FUNCTION authgraph_announce_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF authgraph_viewer_marks(OLD.user_id) !~ '[DPC]' THEN
    PERFORM pg_notify('authgraph_changes', 'e:' || OLD.user_id || ':SESSION_REVOKED:' || OLD.id);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_announce_roles_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('authgraph_changes', 'e:' || OLD.user_id || ':ROLES_CHANGED'); END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('authgraph_changes', 'e:' || NEW.user_id || ':ROLES_CHANGED'); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER users_account_changed AFTER UPDATE ON users FOR EACH ROW
  WHEN (OLD.active IS DISTINCT FROM NEW.active OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.tokens_valid_after IS DISTINCT FROM NEW.tokens_valid_after)
  EXECUTE FUNCTION authgraph_note_account_change();
--> statement-breakpoint
CREATE TRIGGER users_account_deleted AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION authgraph_note_account_change();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER users_account_event AFTER UPDATE ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.active IS DISTINCT FROM NEW.active OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
        OR OLD.tokens_valid_after IS DISTINCT FROM NEW.tokens_valid_after)
  EXECUTE FUNCTION authgraph_announce_account_change();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER users_deleted_event AFTER DELETE ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION authgraph_announce_account_change();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER sessions_revoked_event AFTER UPDATE ON sessions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
  EXECUTE FUNCTION authgraph_announce_session_revoked();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER sessions_deleted_event AFTER DELETE ON sessions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
  EXECUTE FUNCTION authgraph_announce_session_revoked();
--> statement-breakpoint
CREATE TRIGGER user_roles_event AFTER INSERT OR UPDATE OR DELETE ON user_roles FOR EACH ROW
  EXECUTE FUNCTION authgraph_announce_roles_changed();
