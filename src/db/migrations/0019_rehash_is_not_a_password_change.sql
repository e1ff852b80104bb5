-- A sign-in that re-hashes the password at new argon2 parameters writes a new password_hash for
-- the same password. The account-change trigger (0011) took every new hash for a password change:
-- it announced PASSWORD_CHANGED, which ends the user's viewerEvents streams on every device.
-- Now a transaction that only re-hashes says so in a transaction-local setting
-- (authgraph.rehash = 'on', set by accounts.recordSignIn), and the trigger notes no 'P' for it.
-- Everything else is as in 0011.
CREATE OR REPLACE FUNCTION authgraph_note_account_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  list text := coalesce(current_setting('authgraph.viewer_marks', true), '');
  noted text := list;
  marks text[] := '{}';
  mark text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    marks := marks || 'D'::text;
  ELSE
    IF OLD.active AND NOT NEW.active THEN marks := marks || 'D'::text; END IF;
    IF OLD.password_hash IS DISTINCT FROM NEW.password_hash
       AND coalesce(current_setting('authgraph.rehash', true), '') <> 'on' THEN
      marks := marks || 'P'::text;
    END IF;
    IF OLD.tokens_valid_after IS DISTINCT FROM NEW.tokens_valid_after THEN marks := marks || 'C'::text; END IF;
  END IF;
  FOREACH mark IN ARRAY marks LOOP
    IF strpos(noted, OLD.id || ':' || mark || ';') = 0 THEN noted := noted || OLD.id || ':' || mark || ';'; END IF;
  END LOOP;
  IF noted <> list THEN PERFORM set_config('authgraph.viewer_marks', noted, true); END IF;
  RETURN NULL;
END $$;
