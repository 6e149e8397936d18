"""Reading a plan report's HTML without a browser: its heatmap cells, budget bars, sections and references."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ReportDom:
    """What a report shows: `cells` (attributes + visible text of each heatmap box), `bars` by axis (attributes +
    visible numbers), `sections` (text by section id), `references` (tag, attribute, value) that point elsewhere."""

    cells: list[dict[str, str]] = field(default_factory=list)
    bars: dict[str, dict[str, str]] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    references: list[tuple[str, str, str]] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = ReportDom()
        self.section: str | None = None
        self.cell: dict[str, str] | None = None
        self.bar: dict[str, str] | None = None
        self.skip = 0  # inside a <title> of an SVG element (a tooltip, not visible text)
        self.numbers = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.dom.tags.add(tag)
        for key, value in a.items():
            # a namespace declaration (xmlns="http://www.w3.org/2000/svg") names, it fetches nothing
            if not key.startswith("xmlns") and ("://" in value or value.strip().startswith("//")):
                self.dom.references.append((tag, key, value))
        if tag == "script" and "src" in a or tag == "link" or "url(" in a.get("style", ""):
            self.dom.references.append((tag, "src/href/style", str(a)))
        if tag == "section":
            self.section = a.get("id")
            self.dom.sections[self.section or ""] = ""
        classes = a.get("class", "").split()
        if tag == "g" and "cell" in classes:
            self.cell = {**a, "text": ""}
            self.dom.cells.append(self.cell)
        if tag == "g" and "bar" in classes:
            self.bar = {**a, "text": ""}
            self.dom.bars[a["data-axis"]] = self.bar
        if tag == "text" and "numbers" in classes:
            self.numbers = True
        if tag == "title" and (self.cell is not None or self.section is not None):
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.skip:
            self.skip -= 1
        elif tag == "g":
            self.cell = self.bar = None
        elif tag == "text":
            self.numbers = False
        elif tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.section is not None:
            self.dom.sections[self.section] += data
        if self.cell is not None:
            self.cell["text"] += data + " "
        if self.bar is not None and self.numbers:
            self.bar["text"] += data


def read_report(html: str) -> ReportDom:
    """Parse a report page."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.dom
