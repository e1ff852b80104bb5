ALTER TABLE "login_lockouts" DROP COLUMN "failures";--> statement-breakpoint
ALTER TABLE "login_lockouts" DROP COLUMN "window_start";