"""ComfyUI adapters: translate ComfyUI types to calls into `npnet` / `dpsl` and back."""
