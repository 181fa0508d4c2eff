"""Exception types of the inference package.

The hierarchy, so a user knows what to catch::

    SigmalabError                 base of every error sigmalab raises on purpose
    ├── InputError                a user's input is wrong (file, manifest, circuit, option)
    │   ├── FileFormatError       an instrument file cannot be read: names the file, line/column
    │   ├── ManifestError         a study manifest is inconsistent: names the file and entry
    │   └── CircuitError          a circuit string is malformed: points at the character
    ├── ModelError                a model could not be fitted (no convergence, degenerate data)
    └── FitCancelled              a fit was stopped through its ``should_stop`` callback

Each error's message is one line that names what is at fault and what was expected; the CLI
prints it as is and the service returns it as problem+json.
"""

from __future__ import annotations


class SigmalabError(Exception):
    """Base class for errors raised on purpose by sigmalab."""


class InputError(SigmalabError, ValueError):
    """A user-supplied input is invalid."""


class FileFormatError(InputError):
    """An instrument file cannot be read.

    Parameters
    ----------
    path : file at fault.
    problem : what is wrong and what was expected.
    line : 1-based line number in the file, when known.
    """

    def __init__(self, path, problem: str, line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ManifestError(InputError):
    """A study manifest is inconsistent (missing files, unknown recipes, bad geometry…)."""

    def __init__(self, path, problem: str, entry: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.entry = entry
        where = f"{self.path} [{entry}]" if entry else self.path
        super().__init__(f"{where}: {problem}")


class CircuitError(InputError):
    """A circuit string is malformed; the message shows the string with a caret."""

    def __init__(self, circuit: str, position: int, problem: str):
        self.circuit = circuit
        self.position = position
        self.problem = problem
        super().__init__(
            f"bad circuit string at character {position + 1}: {problem}\n"
            f"  {circuit}\n  {' ' * position}^"
        )


class ModelError(SigmalabError):
    """A model could not be fitted to the data."""


class FitCancelled(SigmalabError):
    """A fit was cancelled through its ``should_stop`` callback; no result was produced."""
