"""What the Golden Noise accordion holds, how it is written into the image's infotext and read back."""

from __future__ import annotations

from dataclasses import dataclass, replace

from npnet import GoldenSettings, InputError

INFOTEXT_KEY = "Golden Noise"
XYZ_ATTRIBUTE = "golden_noise_xyz"  # overrides an X/Y/Z plot cell puts on the processing object


class SettingsError(ValueError):
    """A value the accordion (or a pasted infotext, or an X/Y/Z axis) cannot take."""


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    weights: str = "SDXL"
    strength: float = 1.0
    token_policy: str = "first_chunk"
    resolution_mode: str = "strict"

    def golden(self) -> GoldenSettings:
        """The accordion's values as npnet's settings (checked there, the one place they are)."""
        try:
            return GoldenSettings(self.token_policy, self.strength, self.resolution_mode)
        except InputError as error:
            raise SettingsError(f"Golden Noise {error}") from None

    def checked(self) -> Settings:
        self.golden()
        if not self.weights:
            raise SettingsError("Golden Noise weights: choose a network")
        return self

    def with_xyz(self, overrides: dict | None) -> Settings:
        """This cell's X/Y/Z values ("enabled", "strength") over the accordion's."""
        if not overrides:
            return self
        changes = {}
        if "enabled" in overrides:
            changes["enabled"] = _boolean(overrides["enabled"])
        if "strength" in overrides:
            changes["strength"] = _number(overrides["strength"], "X/Y/Z strength")
        return replace(self, **changes)

    def infotext(self) -> str:
        """e.g. 'SDXL, strength 1, first_chunk, strict' (the webui quotes it, since it holds commas)."""
        return f"{self.weights}, strength {self.strength:g}, {self.token_policy}, {self.resolution_mode}"


def parse_infotext(value: str) -> Settings:
    """The settings an infotext value names; the weights may themselves hold commas (a file name)."""
    parts = [p.strip() for p in value.rsplit(",", 3)]
    if len(parts) != 4 or not parts[1].startswith("strength "):
        raise SettingsError(f"not a Golden Noise infotext value: {value!r}")
    weights, strength, policy, mode = parts
    value = _number(strength.removeprefix("strength "), "infotext strength")
    return Settings(True, weights, value, policy, mode).checked()


def _number(value, what: str) -> float:
    """A float from an infotext or an X/Y/Z cell, or a SettingsError naming what it was."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"Golden Noise {what} must be a number in [0, 1], got {value!r}") from None


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"Golden Noise enabled must be True or False, got {value!r}")
