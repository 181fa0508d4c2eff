"""Parse impedance.py circuit strings into a small tree.

Grammar (whitespace ignored)::

    series   := term ("-" term)*
    term     := "p(" series ("," series)* ")" | element
    element  := SYMBOL DIGITS          e.g. R0, CPE1, Wo2, TLM1, TLMs2

Errors raise :class:`~inference.errors.CircuitError` pointing at the offending character.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.circuits.elements import ELEMENTS, Element
from inference.errors import CircuitError


@dataclass(frozen=True)
class ElementNode:
    """One element in a circuit: ``name`` as written (``CPE1``), its type and parameter names."""

    name: str
    element: Element
    position: int

    @property
    def param_names(self) -> list[str]:
        if self.element.n_params == 1:
            return [self.name]
        return [f"{self.name}_{i}" for i in range(self.element.n_params)]

    def to_string(self) -> str:
        return self.name


@dataclass(frozen=True)
class Series:
    children: tuple

    def to_string(self) -> str:
        return "-".join(child.to_string() for child in self.children)


@dataclass(frozen=True)
class Parallel:
    children: tuple

    def to_string(self) -> str:
        return "p(" + ",".join(child.to_string() for child in self.children) + ")"


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.seen: dict[str, int] = {}

    def fail(self, problem: str, position: int | None = None):
        raise CircuitError(self.text, self.pos if position is None else position, problem)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self):
        if not self.text.strip():
            self.fail("the circuit string is empty; expected e.g. 'R0-p(R1,CPE1)'", 0)
        tree = self.series()
        if self.peek():
            char = self.peek()
            if char == ")":
                self.fail("')' without a matching 'p('")
            self.fail(f"unexpected {char!r}; expected '-' between elements")
        return tree

    def series(self):
        children = [self.term()]
        while self.peek() == "-":
            self.pos += 1
            children.append(self.term())
        return children[0] if len(children) == 1 else Series(tuple(children))

    def term(self):
        char = self.peek()
        if not char:
            self.fail("the string ends here; expected an element or 'p('")
        if char == "p" and self.text[self.pos + 1 : self.pos + 2] == "(":
            return self.parallel()
        if char.isalpha():
            return self.element()
        self.fail(f"unexpected {char!r}; expected an element (e.g. R1, CPE1) or 'p('")

    def parallel(self):
        opening = self.pos
        self.pos += 2
        if self.peek() == ")":
            self.fail("empty 'p()'; expected at least one branch, e.g. p(R1,CPE1)")
        branches = [self.series()]
        while self.peek() == ",":
            self.pos += 1
            branches.append(self.series())
        if self.peek() != ")":
            if not self.peek():
                self.fail(f"'p(' at character {opening + 1} is never closed; expected ')'")
            self.fail(f"unexpected {self.peek()!r}; expected ',' or ')'")
        self.pos += 1
        return branches[0] if len(branches) == 1 else Parallel(tuple(branches))

    def element(self):
        start = self.pos
        end = start
        while end < len(self.text) and self.text[end].isalpha():
            end += 1
        symbol = self.text[start:end]
        digits_end = end
        while digits_end < len(self.text) and self.text[digits_end].isdigit():
            digits_end += 1
        if symbol not in ELEMENTS:
            known = ", ".join(ELEMENTS)
            self.fail(f"unknown element {symbol!r}; known elements: {known}", start)
        if digits_end == end:
            self.fail(f"element {symbol!r} needs a number, e.g. {symbol}1", end)
        name = self.text[start:digits_end]
        if name in self.seen:
            self.fail(
                f"duplicate element name {name!r} (first at character {self.seen[name] + 1})",
                start,
            )
        self.seen[name] = start
        self.pos = digits_end
        return ElementNode(name, ELEMENTS[symbol], start)


def parse_tree(text: str):
    """Parse ``text`` into nested :class:`Series`, :class:`Parallel` and :class:`ElementNode`."""
    if not isinstance(text, str):
        raise CircuitError(repr(text), 0, "a circuit must be a string such as 'R0-p(R1,CPE1)'")
    return _Parser(text).parse()
