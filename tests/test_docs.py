"""The documentation a newcomer walks: a short README, links that land, and nothing that points outside the
repository."""

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
# Spelled in pieces so that this file does not mention them itself.
OUTSIDE = [".." + "/shared", "METHOD" + ".md", "ECOSYSTEM" + ".md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)


@lru_cache
def tracked() -> frozenset[str]:
    """Tracked paths relative to the root; on a copy without git, every file there."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    return frozenset(files)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are code, not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation other than '-' and '_' dropped,
    spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a markdown file offers: its headings' slugs (repeats numbered as GitHub does) and
    explicit <a id=...> / <a name=...>."""
    text = path.read_text(encoding="utf-8")
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text(encoding="utf-8")))
            if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("//")]


def test_readme_is_at_most_300_lines_with_the_space_config_on_top():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail to docs/"
    assert lines[0] == "---" and "app_file: app.py" in lines[:lines.index("---", 1)]


def test_the_link_checker_sees_links_and_headings_as_github_does():
    text = "See [a](docs/x.md#b-c), ![p](docs/images/p.png), `[not](a link)` and\n```\n[nor](this)\n```\n"
    assert LINK.findall(prose(text)) == ["docs/x.md#b-c", "docs/images/p.png"]
    assert slug("Fewer, larger stages (measured, not adopted)") == "fewer-larger-stages-measured-not-adopted"
    assert slug("Anchoring 0.75") == "anchoring-075"
    assert slug("The `rau` strategy: [RAU-Net](https://x.org)") == "the-rau-strategy-rau-net"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_lands_on_a_tracked_file_and_heading(doc):
    files = tracked()
    assert doc.relative_to(ROOT).as_posix() in files, "an untracked document"
    broken = []
    for target in relative_links(doc):
        path, _, anchor = target.partition("#")
        if path:
            resolved = (doc.parent / path).resolve()
            try:
                name = resolved.relative_to(ROOT).as_posix()
            except ValueError:
                broken.append(f"{target}: outside the repository")
                continue
            if name not in files and not any(f.startswith(name.rstrip("/") + "/") for f in files):
                broken.append(f"{target}: {name} is not a tracked file")
                continue
        else:
            resolved = doc
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT).as_posix()}")
    assert not broken, "\n".join(broken)


def test_no_tracked_file_points_outside_the_repository():
    mentions = []
    for name in sorted(tracked()):
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        mentions += [f"{name}: {word}" for word in OUTSIDE if word.encode() in data]
    assert not mentions, "\n".join(mentions)
