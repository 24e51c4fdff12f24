"""The ``qualification:`` section of the rules file: the gate a rep's confirmation opens. Pure.

With ``required: true`` a lead over the SQL bar waits at MQL until reps have confirmed
every field of the gate's ``framework`` (``qualified`` activities on ``leads.activity``).
The framework is a built-in (:data:`baton_shared.qualification.FRAMEWORKS`: bant,
meddic, meddpicc, champ, gpctba) or one the file defines under ``frameworks``;
``bant`` narrows the BANT gate to some of its fields (rules files written before
frameworks existed say ``bant: [...]`` only). :attr:`Qualification.gate_fields` is what
both scoring cores check.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from baton_shared.qualification import BANT, FRAMEWORKS, MAX_FIELDS, built_in_names, not_slugs


class Qualification(BaseModel):
    """Optional gate: SQL also needs the fields of one framework confirmed by a rep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = False
    frameworks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Custom frameworks: name -> the fields a rep confirms (slugs)",
    )
    framework: str = Field(
        default=BANT,
        description=f"The framework the gate requires: {built_in_names()} or a custom one",
    )
    bant: list[str] = Field(
        default_factory=lambda: list(FRAMEWORKS[BANT]),
        description="With framework bant: the BANT fields the gate needs (default: all four)",
    )

    @field_validator("frameworks")
    @classmethod
    def _custom_frameworks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, fields in value.items():
            if name in FRAMEWORKS:
                raise ValueError(f"{name!r} is a built-in framework; give yours another name")
            bad = not_slugs([name, *fields])
            if bad:
                raise ValueError(
                    f"{bad[0]!r} is not a slug (lowercase letters, digits, '_', from a letter)"
                )
            if not fields or len(fields) > MAX_FIELDS or len(set(fields)) != len(fields):
                raise ValueError(
                    f"framework {name!r} needs 1 to {MAX_FIELDS} fields, each named once"
                )
        return value

    @field_validator("framework")
    @classmethod
    def _known_framework(cls, value: str, info: ValidationInfo) -> str:
        if value not in FRAMEWORKS and value not in info.data.get("frameworks", {}):
            raise ValueError(
                f"unknown qualification framework {value!r}; use {built_in_names()} "
                "or define it under qualification.frameworks"
            )
        return value

    @field_validator("bant")
    @classmethod
    def _bant_is_for_bant(cls, value: list[str], info: ValidationInfo) -> list[str]:
        framework = info.data.get("framework", BANT)
        if framework != BANT:
            raise ValueError(f"bant narrows the bant gate; framework {framework!r} takes none")
        return value

    @property
    def gate_fields(self) -> tuple[str, ...]:
        """The fields the gate requires, in the framework's order."""
        if self.framework == BANT:
            return tuple(self.bant)
        return tuple(self.frameworks.get(self.framework) or FRAMEWORKS[self.framework])
