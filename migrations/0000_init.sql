CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`token_hash` text NOT NULL,
	`token_prefix` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_token_hash` ON `api_keys` (`token_hash`);--> statement-breakpoint
CREATE TABLE `key_options` (
	`owner` text PRIMARY KEY NOT NULL,
	`options` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `models` (
	`name` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`file_name` text NOT NULL,
	`oss_path` text NOT NULL,
	`etag` text,
	`sha256` text,
	`size_bytes` integer,
	`load_seconds` integer DEFAULT 8 NOT NULL,
	`inference_seconds` integer DEFAULT 3 NOT NULL,
	`registered_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `pools` (
	`checkpoint` text PRIMARY KEY NOT NULL,
	`concurrency_cap` integer NOT NULL,
	`timeout_seconds` integer NOT NULL,
	`extra_args` text DEFAULT '' NOT NULL,
	`env` text DEFAULT '{}' NOT NULL,
	`min_gpu_memory_mb` integer DEFAULT 0 NOT NULL,
	`gpu_class` text,
	`min_nodes` integer DEFAULT 0 NOT NULL,
	`max_nodes` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tasks` (
	`uid` text PRIMARY KEY NOT NULL,
	`task_id` text NOT NULL,
	`owner` text NOT NULL,
	`kind` text NOT NULL,
	`checkpoint` text NOT NULL,
	`status` text NOT NULL,
	`idempotency_key` text,
	`request_hash` text NOT NULL,
	`priority` integer DEFAULT 0 NOT NULL,
	`request` text NOT NULL,
	`parameters` text,
	`info` text,
	`image_keys` text DEFAULT '[]' NOT NULL,
	`passthrough_result` text,
	`error` text,
	`webui_error` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`node_id` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_owner_task_id` ON `tasks` (`owner`,`task_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_owner_idempotency` ON `tasks` (`owner`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `tasks_owner_created` ON `tasks` (`owner`,`created_at`);--> statement-breakpoint
CREATE INDEX `tasks_status` ON `tasks` (`status`);