"""Model kinds as declarations: each kind's name, the tasks it does, whether an ensemble may
hold it, and one line on what it is. The list of kinds is written here only: the config's
``model.kind`` choices, the ensemble's members, the strategies' "every kind", the board's
dropdown and the recipes' coverage test read it. The heavy code of a kind (its predictor
class) stays in ``fintune.models.kinds``.

Torch-free, below the strategies and the config.
"""

from fintune.kinds.declarations import KINDS, Kind, kind_names, kind_of, member_kinds

__all__ = ["KINDS", "Kind", "kind_names", "kind_of", "member_kinds"]
