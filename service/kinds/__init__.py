"""Job kinds, one module each; :data:`KINDS` is the registry the server dispatches on.

=================  =========================================  ===============================
kind               inputs                                     result (``GET …/result``)
=================  =========================================  ===============================
``fit_spectrum``   one uploaded instrument file + a circuit   ``result.nc`` (posterior draws)
``analyze_study``  uploaded study files + manifest, or the    ``result.nc``; ``summary.json``
                   name of a dataset in ``<data_dir>/datasets``
``propose``        a campaign's JSON state + ``q``            ``proposals.json``
=================  =========================================  ===============================

A new kind is a new module here defining a request model (``kind: Literal["name"]``) and a
:class:`~service.kinds.base.JobKind` named ``KIND``, listed below.
"""

from __future__ import annotations

from service.kinds import analyze_study, fit_spectrum, propose
from service.kinds.base import JobKind

KINDS: dict[str, JobKind] = {
    module.KIND.name: module.KIND for module in (fit_spectrum, analyze_study, propose)
}
