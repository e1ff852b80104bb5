-- Built-in roles and permissions. `admin` holds every permission; `user` holds none.
INSERT INTO "roles" ("name", "description") VALUES
  ('user', 'Every registered account'),
  ('admin', 'Runs the server: holds every permission');
--> statement-breakpoint
INSERT INTO "permissions" ("name", "description") VALUES
  ('users:read', 'Look up any user and read their email and activity'),
  ('users:write', 'Enable and disable accounts'),
  ('roles:grant', 'Grant and revoke roles'),
  ('sessions:revoke', 'List and revoke other users'' sessions'),
  ('audit:read', 'Read the audit log');
--> statement-breakpoint
INSERT INTO "role_permissions" ("role", "permission")
  SELECT 'admin', "name" FROM "permissions";
