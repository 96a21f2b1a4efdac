"""lxml: parse and XPath, as question templates are read."""
from lxml import etree

DOC = b"""<question>
  <part id="a" points="2"><answer>42</answer></part>
  <part id="b" points="3"><answer>x^2</answer></part>
  <part id="c" points="5"><answer>pi</answer></part>
</question>"""


def points():
    root = etree.fromstring(DOC)
    return {p.get("id"): int(p.get("points")) for p in root.xpath("//part")}


def answers():
    return etree.fromstring(DOC).xpath("//part[@points > 2]/answer/text()")
