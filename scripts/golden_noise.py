"""Golden Noise for Forge and Automatic1111: the accordion in txt2img, wired to `golden_noise_webui`.

The webui loads this file with the extension's folder on sys.path; everything it does is in the
`golden_noise_webui` package beside it, over the same `npnet` core as the ComfyUI nodes.
"""

from golden_noise_webui import extension, host
from npnet import POLICIES, RESOLUTION_MODES


class GoldenNoiseScript(host.Script):
    sorting_priority = 15

    def title(self):
        return "Golden Noise"

    def show(self, is_img2img):
        return host.AlwaysVisible if not is_img2img else False

    def ui(self, is_img2img):
        import gradio as gr  # the webui's own Gradio; imported only when the page is built

        with gr.Accordion("Golden Noise", open=False):
            enabled = gr.Checkbox(label="Enable Golden Noise (NPNet)", value=False)
            choices = extension.weight_choices()
            weights = gr.Dropdown(label="Weights (models/npnet)", choices=choices, value=choices[0])
            strength = gr.Slider(label="Strength", minimum=0.0, maximum=1.0, step=0.05, value=1.0)
            token_policy = gr.Radio(label="Token policy", choices=list(POLICIES), value="first_chunk")
            resolution_mode = gr.Radio(
                label="Resolution mode", choices=list(RESOLUTION_MODES), value="strict"
            )
            gr.Markdown(extension.NOTE)
        components = [enabled, weights, strength, token_policy, resolution_mode]
        self.infotext_fields = extension.infotext_fields(*components)
        self.paste_field_names = [extension.INFOTEXT_KEY]
        return components

    def process_batch(self, p, *args, **kwargs):
        extension.process_batch(p, *args)

    def process_before_every_sampling(self, p, *args, **kwargs):
        extension.before_every_sampling(p, kwargs.get("x"), kwargs.get("noise"), kwargs.get("c"))


host.on_before_ui(extension.register_xyz)
