-- Carry the failures counted by the fixed-window lockout into the new failure log, so that an
-- upgrade grants no email fresh guesses: the first of them at the window's start, the latest
-- at the row's last update. The escalation level is kept as it is.
UPDATE "login_lockouts"
SET "failure_times" = array_fill("window_start", ARRAY[least("failures", 100) - 1]) || "updated_at"
WHERE "failures" > 0;
