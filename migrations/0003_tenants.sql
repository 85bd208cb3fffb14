ALTER TABLE `api_keys` ADD `limits` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `gpu_ms` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `model_load_ms` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `image_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `tasks` ADD `images_expired_at` integer;--> statement-breakpoint
CREATE INDEX `tasks_owner_status` ON `tasks` (`owner`,`status`);--> statement-breakpoint
CREATE INDEX `tasks_owner_finished` ON `tasks` (`owner`,`finished_at`);--> statement-breakpoint
CREATE INDEX `tasks_finished` ON `tasks` (`finished_at`);