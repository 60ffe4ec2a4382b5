"""Module ids and column names shared by algorithms."""

from nebula.rl.core.columns import Columns

DEFAULT_MODULE_ID = "default_policy"
DEFAULT_POLICY_ID = DEFAULT_MODULE_ID
ALL_MODULES = "__all_modules__"

__all__ = ["ALL_MODULES", "DEFAULT_MODULE_ID", "DEFAULT_POLICY_ID", "Columns"]
