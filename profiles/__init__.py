"""Risk profiles and watch lists: officer-authored targeting criteria applied beside the model.

Pure functions over validated definitions and declaration columns; the API, batch scoring and the
CLI call these (one path everywhere).
"""

from profiles.apply import ProfileDecision, apply_profiles
from profiles.match import ProfileMatches, Rule, RuleHit, RuleSet, compile_rules, match_profiles, rules_of
from profiles.model import Action, Condition, Profile, WatchEntry, WatchList
from profiles.stats import STATS_COLUMNS, profile_stats, rule_hits_table, wilson_interval
from profiles.suggest import Suggestion, suggest_profiles
from profiles.validate import ProfileError, ProfileProblem, field_kinds, validate_profiles
from profiles.yamlio import (
    add_versions,
    describe_pins,
    dump_profiles,
    latest_versions,
    load_profiles,
    pinned_profiles,
    retire,
)

__all__ = [
    "Action",
    "Condition",
    "Profile",
    "ProfileDecision",
    "ProfileError",
    "ProfileMatches",
    "ProfileProblem",
    "Rule",
    "RuleHit",
    "RuleSet",
    "STATS_COLUMNS",
    "Suggestion",
    "WatchEntry",
    "WatchList",
    "add_versions",
    "apply_profiles",
    "compile_rules",
    "describe_pins",
    "dump_profiles",
    "field_kinds",
    "latest_versions",
    "load_profiles",
    "match_profiles",
    "pinned_profiles",
    "profile_stats",
    "retire",
    "rule_hits_table",
    "rules_of",
    "suggest_profiles",
    "validate_profiles",
    "wilson_interval",
]
