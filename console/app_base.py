"""What every console screen may ask of the app it runs in, whichever app that is (the
console, `smp replay`, a browser on its own): presentation mode, and the keys' names as the
key map applies them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from textual.app import App
from textual.reactive import reactive


class KeyedApp(App[Any]):
    presentation: reactive[bool] = reactive(False)
    # Binding id -> keys; an app with a key map (the console's) sets its own.
    keymap_: Mapping[str, str] = MappingProxyType({})

    def key(self, *binding_ids: str) -> str:
        """The keys of these bindings as the key map applies them, for a label or a line
        ("space / Esc"): every text that names a key is built from this, so a remapped key
        is never misnamed."""
        from console.keymap import binding_ids as declared
        from console.keymap import label

        return " / ".join(label(self.keymap_.get(b) or ",".join(declared()[b]))
                          for b in binding_ids)
