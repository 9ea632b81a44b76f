"""LLM feature engineering for tables, and an audit of the operators LLMs prefer
("Large Language Models Engineer Too Many Simple Features for Tabular Data", arXiv:2410.17787).

An LLM (any OpenAI-compatible endpoint, or a local GGUF model through llama-cpp-python) proposes
features built from OpenFE's 23 operators (`operators`); replies are read into operators
(`proposals`), computed without leakage (`FeatureTransformer`), compared with what OpenFE selects
on the same data (`reference`) and tested for operator bias (`audit`, `bias_study`).
"""

from autofm.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    "autofm.fe",
    {
        "operators": [
            "OPERATORS",
            "OTHER",
            "FeatureSpec",
            "FeatureTransformer",
            "applicable_operators",
            "candidate_pool",
            "check_feature",
            "column_kinds",
        ],
        "proposals": ["ParsedReply", "parse_reply"],
        "llm": ["CachedClient", "LlamaCppClient", "OpenAIClient", "ReplyCache", "make_client"],
        "scripted_server": ["ScriptedChatServer"],
        "prompts": ["feature_prompt", "feature_request", "memorisation_score"],
        "reference": ["openfe_rank", "openfe_select"],
        "audit": ["compare_to_reference", "operator_counts", "reference_distribution"],
        "suggest": ["Suggestion", "add_features", "suggest_features"],
        "impact": ["downstream_auc", "summarise_auc"],
        "bias_study": ["TableStudy", "audit_studies", "study_table"],
    },
)
