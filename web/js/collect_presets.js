// Collect Noise Prompt Dataset: choosing a `preset` sets the widgets it stands for.
//
// "authors" is the authors' collection script (sampler ddim, scheduler ddim_uniform, 50 steps, cfg 5.5,
// cfg_denoise 5.5, cfg_inversion 1.0, inversion released, an empty negative for the zero embeddings).
// The values come from the server (`npnet/learning/recipe.py` PRESETS, served at /golden_noise/collect_presets),
// so the front end holds no second copy; the node still checks them when it runs, so a workflow edited
// by hand or sent to /prompt cannot collect under the preset's name with other settings.
// Served at /extensions/<pack>/js/, three levels below the site root.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

let presets = null;

async function loadPresets() {
  if (presets === null) {
    const reply = await api.fetchApi("/golden_noise/collect_presets");
    presets = reply.ok ? await reply.json() : {};
  }
  return presets;
}

app.registerExtension({
  name: "golden_noise.collect.presets",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "GoldenNoiseCollectDataset") return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const node = this;
      const preset = node.widgets?.find((w) => w.name === "preset");
      if (!preset) return result;
      const callback = preset.callback;
      preset.callback = function (value) {
        const out = callback?.apply(this, arguments);
        loadPresets().then((all) => {
          for (const [name, wanted] of Object.entries(all[value] || {})) {
            const widget = node.widgets.find((w) => w.name === name);
            if (widget) widget.value = wanted;
          }
          node.setDirtyCanvas?.(true, true);
        });
        return out;
      };
      return result;
    };
  },
});
