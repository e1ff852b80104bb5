ALTER TABLE "sessions" ADD COLUMN "amr" text[] DEFAULT '{pwd}' NOT NULL;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "auth_time" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
-- Sessions opened before this migration were authenticated when they were created, not now:
-- otherwise every one of them would count as "recently authenticated" for REAUTH_MAX_AGE.
UPDATE "sessions" SET "auth_time" = "created_at";
