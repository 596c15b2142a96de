"""The Forge / Automatic1111 adapter: Golden Noise in txt2img, over the host-free `npnet` core.

`scripts/golden_noise.py` (the file the webui loads) only wires this package in. Modules:
`settings` (the accordion's values, their infotext, X/Y/Z overrides), `conditioning` (the prompt's
token states out of the webui's conditioning structures), `weights` (the `models/npnet` folder, the
download, the network cache), `generation` (the noise hook and the older A1111 `p.rng` wrapper), and
`host`, the only module that imports the webui's own modules. Nothing here imports ComfyUI, and the
ComfyUI adapter (`nodes/`) never imports this package.
"""
