"""Shared pieces of the config models: the strict base class and unit-typed fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from dpexport.config import units


class Block(BaseModel):
    """Base of every config model: unknown keys are errors, values are not coerced
    between unrelated types, and models are immutable once validated.

    ``defer_build``: a config file is validated once, as a whole ``DpexportConfig``,
    whose validator covers every nested block; building one validator per block
    class as well, at import, would cost every process that reads a config ~5 ms
    for validators it never calls. A block class validated on its own builds its
    validator on first use. So a block's default is ``Field(default_factory=
    X.model_construct)``, the field defaults without a validator (pydantic never
    validates a default anyway), except where a model validator shapes even an
    empty block (``LifecyclePolicies``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# ``default_factory`` values. pydantic inspects a factory's signature, and for the
# builtins ``list``/``dict`` that means parsing their text signature (tokenize), a
# few ms over the ~35 list/dict fields; plain functions are cheap to inspect.
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[Any, Any]:
    return {}


def _unit(parse: Callable[[object], Any], forms: str) -> BeforeValidator:
    kind = parse.__name__.removeprefix("parse_").replace("_", " ")

    def check(value: object) -> Any:
        try:
            return parse(value)
        except ValueError:
            # The error type "unit" carries the accepted forms for the issue's `expected`.
            raise PydanticCustomError(
                "unit", "not a valid {kind}", {"kind": kind, "expected": forms}
            ) from None

    return BeforeValidator(check)


def _text(value: object) -> object:
    # `version: 2.6` unquoted is a float in YAML; the config means the text "2.6".
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _upper(value: object) -> object:
    # Enum-like values (formats, codecs, modes) are accepted in any case.
    return value.strip().upper() if isinstance(value, str) else value


#: ``128MB`` -> bytes (binary units; a plain int is bytes).
Size = Annotated[int, _unit(units.parse_size, units.SIZE_FORMS)]
#: ``24 hours`` -> timedelta (a plain number is seconds).
Duration = Annotated[timedelta, _unit(units.parse_duration, units.DURATION_FORMS)]
SizeThreshold = Annotated[
    units.SizeThreshold, _unit(units.parse_size_threshold, units.SIZE_THRESHOLD_FORMS)
]
Rate = Annotated[units.Rate, _unit(units.parse_rate, units.RATE_FORMS)]
Money = Annotated[units.Money, _unit(units.parse_money, units.MONEY_FORMS)]
#: Free text that YAML may have read as a number (``2.6``).
Text = Annotated[str, BeforeValidator(_text)]
#: An enum-like word, normalised to upper case; its allowed values are checked by
#: ``dpexport.config.validate`` so that the error can suggest the nearest one.
Word = Annotated[str, BeforeValidator(_upper)]
