-- Migration 0009 noted what changed for a user in a transaction-local setting named after the
-- user (authgraph.viewer_<id>). A local setting's value goes at commit, but PostgreSQL never
-- frees a custom setting's NAME during a connection's life: a pooled connection grew by one
-- entry per distinct user it ever changed. Now one fixed name, authgraph.viewer_marks, holds
-- the transaction's marks as a list of '<user id>:<mark>;' entries (D: disabled or deleted, P:
-- password changed, C: cut-off moved), each entry once. Same events, same precedence, same
-- rollback behaviour: only where the marks are kept changes; the announcing triggers of 0009
-- read them through authgraph_viewer_marks(user id), which keeps its meaning.
-- Cost: each noting or reading scans the list (strpos) and a note rewrites it, so a transaction
-- that changes n users does O(n^2) work in total: nothing for the app (one user per
-- transaction); an operator's statement touching many thousands of users pays for it (not measured).
CREATE OR REPLACE FUNCTION authgraph_viewer_marks(user_id uuid) RETURNS text LANGUAGE sql AS $$
  SELECT concat(
    CASE WHEN strpos(list, user_id || ':D;') > 0 THEN 'D' END,
    CASE WHEN strpos(list, user_id || ':P;') > 0 THEN 'P' END,
    CASE WHEN strpos(list, user_id || ':C;') > 0 THEN 'C' END)
  FROM coalesce(current_setting('authgraph.viewer_marks', true), '') AS list
$$;
--> statement-breakpoint
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
    IF OLD.password_hash IS DISTINCT FROM NEW.password_hash THEN marks := marks || 'P'::text; END IF;
    IF OLD.tokens_valid_after IS DISTINCT FROM NEW.tokens_valid_after THEN marks := marks || 'C'::text; END IF;
  END IF;
  FOREACH mark IN ARRAY marks LOOP
    IF strpos(noted, OLD.id || ':' || mark || ';') = 0 THEN noted := noted || OLD.id || ':' || mark || ';'; END IF;
  END LOOP;
  IF noted <> list THEN PERFORM set_config('authgraph.viewer_marks', noted, true); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP FUNCTION authgraph_viewer_marks_setting(uuid);
