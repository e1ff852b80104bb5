-- Every change an instance may hold in memory is announced on channel authgraph_changes, from
-- inside the writing transaction: PostgreSQL delivers it only on commit, so a rolled-back change
-- announces nothing, and no write path (the app, the CLI, an operator's SQL) can forget to.
-- Payloads name what changed: u:<user id>, s:<session id>, t:<expiry epoch s>:<jti>, r:<role>.
CREATE FUNCTION authgraph_notify_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('authgraph_changes', 'u:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_notify_user_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('authgraph_changes', 'u:' || OLD.user_id); END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('authgraph_changes', 'u:' || NEW.user_id); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('authgraph_changes', 's:' || OLD.id);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_notify_revoked_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('authgraph_changes', 't:' || ceil(extract(epoch FROM NEW.expires_at))::bigint || ':' || NEW.jti);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION authgraph_notify_role_permission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('authgraph_changes', 'r:' || OLD.role); END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('authgraph_changes', 'r:' || NEW.role); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER users_changed AFTER UPDATE ON users FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
  EXECUTE FUNCTION authgraph_notify_user();
--> statement-breakpoint
CREATE TRIGGER users_deleted AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION authgraph_notify_user();
--> statement-breakpoint
CREATE TRIGGER user_roles_changed AFTER INSERT OR UPDATE OR DELETE ON user_roles FOR EACH ROW
  EXECUTE FUNCTION authgraph_notify_user_role();
--> statement-breakpoint
-- A session's last_used_at moves on every refresh and matters to no check: not announced.
CREATE TRIGGER sessions_changed AFTER UPDATE ON sessions FOR EACH ROW
  WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
  EXECUTE FUNCTION authgraph_notify_session();
--> statement-breakpoint
-- Deleting a session that was revoked or had expired changes no answer (the purge does that).
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions FOR EACH ROW
  WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
  EXECUTE FUNCTION authgraph_notify_session();
--> statement-breakpoint
CREATE TRIGGER revoked_tokens_added AFTER INSERT ON revoked_tokens FOR EACH ROW
  EXECUTE FUNCTION authgraph_notify_revoked_token();
--> statement-breakpoint
CREATE TRIGGER role_permissions_changed AFTER INSERT OR UPDATE OR DELETE ON role_permissions FOR EACH ROW
  EXECUTE FUNCTION authgraph_notify_role_permission();
