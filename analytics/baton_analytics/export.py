"""Topic records to table rows, and rows to Parquet or CSV.

One row per record: the Kafka coordinates (``_topic``, ``_partition``, ``_offset``,
``_timestamp``, ``_key``) then the record's top-level fields. Nested objects and lists
are kept as JSON text.

* A Baton topic (``leads.*`` and their DLQs) has a known record model: the columns and
  their types come from it (timestamps as UTC timestamps, enums as text), rows are
  written as they are read (memory stays flat however long the range), and a record
  that does not match the model keeps its raw text in ``_value``.
* Any other topic: columns are inferred from the records (``at`` and ``*_at`` text
  becomes timestamps; a column of mixed types is text), so the range is held in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AwareDatetime, ValidationError

from baton_analytics.source import Fetched
from baton_shared.schemas import (
    Activity,
    Assignment,
    DeadLetter,
    LeadEvent,
    Record,
    SlaEvent,
    Transition,
)
from baton_shared.topics import (
    LEADS_ACTIVITY,
    LEADS_ASSIGNMENTS,
    LEADS_EVENTS,
    LEADS_SLA,
    LEADS_TRANSITIONS,
)

FORMATS = ("parquet", "csv")
MODELS: dict[str, type[Record]] = {
    LEADS_EVENTS: LeadEvent,
    LEADS_TRANSITIONS: Transition,
    LEADS_ASSIGNMENTS: Assignment,
    LEADS_ACTIVITY: Activity,
    LEADS_SLA: SlaEvent,
}
COORDINATES = pa.schema(
    [
        ("_topic", pa.string()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
        ("_timestamp", pa.timestamp("ms", tz="UTC")),
        ("_key", pa.string()),
    ]
)


class ExportError(ValueError):
    """The export cannot be written as asked."""


def format_for(path: Path, given: str | None) -> str:
    """``--format`` when given, else from the file suffix."""
    fmt = given or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ExportError(
            f"cannot tell the format of {str(path)!r}: name it .parquet or .csv, "
            "or pass --format parquet|csv"
        )
    return fmt


def _coordinates(record: Fetched) -> dict[str, Any]:
    """The columns every row starts with: where the record is in Kafka."""
    return {
        "_topic": record.topic,
        "_partition": record.partition,
        "_offset": record.offset,
        "_timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC),
        "_key": record.key.decode("utf-8", "replace") if record.key else None,
    }


def _raw_row(row: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """``row`` for a record that is not what its columns expect: its text in ``_value``."""
    row["_value"] = raw.decode("utf-8", "replace")
    return row


def to_row(record: Fetched) -> dict[str, Any]:
    row = _coordinates(record)
    raw = record.value or b""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        return _raw_row(row, raw)
    for name, v in value.items():
        row[name] = _cell(name, v)
    return row


def _cell(name: str, value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, str) and (name == "at" or name.endswith("_at")):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            seen.setdefault(name, None)
    return list(seen)


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    names = columns_of(rows)
    arrays = [_array([row.get(n) for row in rows]) for n in names]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path, compression="zstd")


def _array(values: list[Any]) -> pa.Array:
    """Arrow's inferred type; a column of mixed types is kept as text."""
    if all(v is None for v in values):
        return pa.array(values, type=pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _text(v) for v in values], type=pa.string())


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    names = columns_of(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_rows(rows: Iterable[dict[str, Any]], path: Path, fmt: str) -> int:
    materialised = list(rows)
    if fmt == "parquet":
        write_parquet(materialised, path)
    else:
        write_csv(materialised, path)
    return len(materialised)


def model_for(topic: str) -> type[Record] | None:
    """The record model of a Baton topic name (base name, without the prefix)."""
    if topic.endswith(".dlq"):
        return DeadLetter
    return MODELS.get(topic)


def _arrow_type(annotation: Any) -> pa.DataType:
    if get_origin(annotation) in (Union, UnionType):
        inner = [a for a in get_args(annotation) if a is not NoneType]
        annotation = inner[0] if len(inner) == 1 else str
    if get_origin(annotation) is Literal:
        annotation = type(get_args(annotation)[0])
    if annotation is AwareDatetime or annotation is datetime:
        return pa.timestamp("us", tz="UTC")
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return pa.bool_()
        if issubclass(annotation, Enum | str):
            return pa.string()
        if issubclass(annotation, int):
            return pa.int64()
        if issubclass(annotation, float):
            return pa.float64()
    return pa.string()  # nested models, dicts, lists: JSON text


def schema_of(model: type[Record]) -> pa.Schema:
    fields = [
        pa.field(f.alias or name, _arrow_type(f.annotation))
        for name, f in model.model_fields.items()
    ]
    return pa.schema([*COORDINATES, *fields, pa.field("_value", pa.string())])


def typed_row(record: Fetched, model: type[Record]) -> dict[str, Any]:
    row = _coordinates(record)
    raw = record.value or b""
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError:
        return _raw_row(row, raw)
    for name, value in parsed.model_dump(by_alias=True).items():
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, dict | list):
            value = orjson.dumps(value).decode()
        row[name] = value
    return row


class TypedWriter:
    """Streams rows of a known record model to Parquet (row groups) or CSV."""

    def __init__(self, path: Path, fmt: str, model: type[Record]) -> None:
        self.model = model
        self.schema = schema_of(model)
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._csv_file = None
        self._csv: csv.DictWriter[str] | None = None
        if fmt == "parquet":
            self._parquet = pq.ParquetWriter(path, self.schema, compression="zstd")
        else:
            self._csv_file = path.open("w", newline="")
            self._csv = csv.DictWriter(self._csv_file, fieldnames=self.schema.names)
            self._csv.writeheader()

    def write(self, records: list[Fetched]) -> None:
        rows = [typed_row(r, self.model) for r in records]
        self.rows += len(rows)
        if self._parquet is not None:
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        elif self._csv is not None:
            for row in rows:
                self._csv.writerow({k: _csv_cell(v) for k, v in row.items()})

    def close(self) -> int:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv_file is not None:
            self._csv_file.close()
        return self.rows
