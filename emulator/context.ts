import type { AddonFolder } from "./addon-folder.ts";
import type { CheckpointRegistry } from "./checkpoints.ts";
import type { ModelFolders } from "./folders.ts";
import type { GenerationState } from "./generation-state.ts";
import type { LoadedModel } from "./loaded-model.ts";
import type { OptionsStore } from "./options-store.ts";
import type { QueueLock } from "./queue-lock.ts";

/** Everything one running emulator shares between its routes (sd-webui's process globals). */
export interface EmulatorContext {
  readonly folders: ModelFolders;
  /** --nowebui: API only, without the UI's gradio routes such as /internal/progress. */
  readonly apiOnly: boolean;
  /** --controlnet: behave as if the sd-webui-controlnet extension were installed. */
  readonly controlnet: boolean;
  readonly stepMs: number;
  readonly host: string;
  /** Whether --api-auth is set (cmd-flags reports it without the credentials). */
  readonly authEnabled: boolean;
  /** The port actually listened on (known once listening). */
  port: number;
  readonly checkpoints: CheckpointRegistry;
  /** The add-on folders as of their last refresh (upscalers: as of start-up, sd-webui has no refresh for them). */
  /** mtime of the embeddings folder at its last scan (sd-webui rescans when it moves). */
  embeddingsScannedMtimeMs: number;
  readonly addons: {
    readonly lora: AddonFolder;
    readonly vae: AddonFolder;
    readonly controlnet: AddonFolder;
    readonly embedding: AddonFolder;
    readonly upscaler: AddonFolder;
  };
  readonly options: OptionsStore;
  readonly state: GenerationState;
  readonly lock: QueueLock;
  readonly model: LoadedModel;
  /** Finished txt2img/img2img requests. */
  generations: number;
}
