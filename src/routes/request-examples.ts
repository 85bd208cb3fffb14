// Example requests of the submit routes in the API reference (both surfaces), runnable against
// `npm start`'s demo checkpoints. An image is base64 or the key POST /uploads answered.
const UPLOADED_IMAGE = "inputs/<your key id>/up_<id>.png (the key POST /uploads answered, or base64)";

export const txt2imgExample = {
  stable_diffusion_model: "demo-v1",
  prompt: "a lighthouse at dusk, oil painting",
  negative_prompt: "blurry",
  sampler_name: "Euler a",
  steps: 20,
  cfg_scale: 7,
  width: 512,
  height: 512,
  seed: 42,
  batch_size: 1,
};

export const img2imgExample = {
  stable_diffusion_model: "demo-v1",
  prompt: "the same lighthouse in winter",
  init_images: [UPLOADED_IMAGE],
  denoising_strength: 0.6,
  steps: 20,
  seed: 42,
};

export const extrasExample = { image: UPLOADED_IMAGE, upscaling_resize: 2, upscaler_1: "R-ESRGAN 4x+" };

/** sd-webui clients pick the checkpoint with override_settings, as in sd-webui. */
const sdapiCheckpoint = { override_settings: { sd_model_checkpoint: "demo-v1" } };
const { stable_diffusion_model: _txt2imgModel, ...txt2imgBody } = txt2imgExample;
const { stable_diffusion_model: _img2imgModel, ...img2imgBody } = img2imgExample;
export const sdapiTxt2imgExample = { ...txt2imgBody, ...sdapiCheckpoint };
export const sdapiImg2imgExample = { ...img2imgBody, ...sdapiCheckpoint };
export const sdapiExtrasBatchExample = { imageList: [{ data: UPLOADED_IMAGE, name: "one.png" }], upscaling_resize: 2, upscaler_1: "R-ESRGAN 4x+" };
