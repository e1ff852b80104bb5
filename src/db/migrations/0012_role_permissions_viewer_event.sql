-- A permission granted to or revoked from a role changes what every holder of the role may do:
-- announce ROLES_CHANGED (e:<user id>:ROLES_CHANGED, as user_roles' trigger of 0009 does) to
-- each of them. Statement-level triggers over the transition tables: one notification per
-- holder per statement, however many permissions the statement changed, and PostgreSQL sends a
-- payload repeated in one transaction once. Cost: one scan of user_roles_role_idx per changed
-- role and one queued notification per holder, delivered at commit to every instance; a role
-- held by a hundred thousand users makes a hundred thousand notifications (each instance then
-- looks each user up among its own streams, in memory). A rolled-back change announces nothing.
CREATE FUNCTION authgraph_announce_role_permissions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('authgraph_changes', 'e:' || holder.user_id || ':ROLES_CHANGED')
      FROM (SELECT DISTINCT user_id FROM user_roles WHERE role IN (SELECT role FROM old_rows)) AS holder;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('authgraph_changes', 'e:' || holder.user_id || ':ROLES_CHANGED')
      FROM (SELECT DISTINCT user_id FROM user_roles WHERE role IN (SELECT role FROM new_rows)) AS holder;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER role_permissions_inserted_event AFTER INSERT ON role_permissions REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION authgraph_announce_role_permissions_changed();
--> statement-breakpoint
CREATE TRIGGER role_permissions_updated_event AFTER UPDATE ON role_permissions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION authgraph_announce_role_permissions_changed();
--> statement-breakpoint
CREATE TRIGGER role_permissions_deleted_event AFTER DELETE ON role_permissions REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION authgraph_announce_role_permissions_changed();
