"""ablate.models: attention zoo, backbones, insertion, and complexity counting (imports only torch).

Attention kinds and backbones register themselves: the registries (``registry.ATTENTION``,
``registry.BACKBONES``) import ``ablate.models.attention`` and ``ablate.models.backbones`` on first use.
"""

from ablate.models.complexity import count_madds, count_params, profile_model
from ablate.models.insert import PlanEntry, insert_attention, insertion_plan
from ablate.models.registry import (
    create_attention,
    create_model,
    get_attention_cls,
    list_attention,
    list_models,
    register_attention,
    register_backbone,
)

__all__ = [
    "PlanEntry", "count_madds", "count_params", "create_attention", "create_model", "get_attention_cls",
    "insert_attention", "insertion_plan", "list_attention", "list_models", "profile_model",
    "register_attention", "register_backbone",
]
