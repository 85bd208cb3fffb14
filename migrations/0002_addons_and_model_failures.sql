ALTER TABLE `models` ADD `folder` text;--> statement-breakpoint
ALTER TABLE `models` ADD `failed_reason` text;--> statement-breakpoint
ALTER TABLE `models` ADD `failed_at` integer;--> statement-breakpoint
ALTER TABLE `tasks` ADD `addons` text DEFAULT '[]' NOT NULL;