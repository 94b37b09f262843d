"""What each recorded prompt says, so a simulator can show the words beside the audio."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent.parent


def prompt_key(url: str) -> tuple[str, str] | None:
    """`https://host/audio/km/welcome.mp3` -> ("km", "welcome"); None for a URL that is not a prompt."""
    parts = urlsplit(url).path.rsplit("/", 2)
    if len(parts) < 3 or "." not in parts[2]:
        return None
    return parts[1], parts[2].rsplit(".", 1)[0]


class PromptCatalogue:
    """(language, audio name) -> the text of the prompt."""

    def __init__(self, texts: dict[tuple[str, str], str] | None = None):
        self.texts = dict(texts or {})

    def name_for(self, url: str) -> str:
        key = prompt_key(url)
        return f"{key[0]}/{key[1]}" if key else url

    def text_for(self, url: str) -> str | None:
        key = prompt_key(url)
        return self.texts.get(key) if key else None

    def texts_for(self, url: str) -> dict[str, str]:
        """The same prompt in every language the script has it in (staff may not read Khmer)."""
        key = prompt_key(url)
        if key is None:
            return {}
        return {lang: text for (lang, name), text in self.texts.items() if name == key[1]}


LANGS = ("km", "th", "en")


def _collect(node: object, texts: dict[tuple[str, str], str], name: str | None = None) -> None:
    """Find prompts in a script however it nests them: a mapping {name: {km: text, th: text}}, or an
    item with an audio name and a text per language."""
    if isinstance(node, list):
        for item in node:
            _collect(item, texts)
        return
    if not isinstance(node, dict):
        return
    by_lang = {k: v for k, v in node.items() if k in LANGS and isinstance(v, str)}
    if by_lang and name:
        for lang, text in by_lang.items():
            texts.setdefault((lang, name), text.strip())
    audio, per_lang = node.get("audio"), node.get("text")
    if isinstance(audio, str) and isinstance(per_lang, dict):
        for lang, value in per_lang.items():
            if isinstance(value, str):
                texts.setdefault((lang, audio), value.strip())
    for key, value in node.items():
        if isinstance(value, (dict, list)):
            _collect(value, texts, str(key))


def load_prompts(root: Path | None = None) -> PromptCatalogue:
    """Prompt texts from the voice scripts' YAML (ivr_scripts/voice/*.yaml)."""
    import yaml

    texts: dict[tuple[str, str], str] = {}
    folder = (root or ROOT / "ivr_scripts") / "voice"
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        with path.open(encoding="utf-8") as f:
            _collect(yaml.safe_load(f), texts)
    return PromptCatalogue(texts)
