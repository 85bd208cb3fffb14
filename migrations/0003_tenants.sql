CREATE TABLE `uploads` (
	`key` text PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`content_type` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `uploads_owner_created` ON `uploads` (`owner`,`created_at`);--> statement-breakpoint
CREATE INDEX `uploads_created` ON `uploads` (`created_at`);--> statement-breakpoint
ALTER TABLE `api_keys` ADD `limits` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `gpu_ms` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `model_load_ms` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `image_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `images_expired_at` integer;--> statement-breakpoint
CREATE INDEX `tasks_owner_status` ON `tasks` (`owner`,`status`);--> statement-breakpoint
CREATE INDEX `tasks_owner_finished` ON `tasks` (`owner`,`finished_at`);--> statement-breakpoint
CREATE INDEX `tasks_unexpired` ON `tasks` (`images_expired_at`,`finished_at`);