"""Validates raw Kubernetes objects (dicts from YAML) against the models, with field-path errors."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from gridshift.api.base import ADMISSION, API_VERSION
from gridshift.api.common import DNS_LABEL, DNS_SUBDOMAIN
from gridshift.api.crdgen import openapi_schema
from gridshift.api.gpu_profile import GPUProfile
from gridshift.api.inference_deployment import InferenceDeployment
from gridshift.api.regional_cluster import RegionalCluster

MODELS_BY_KIND: dict[str, type[BaseModel]] = {
    "InferenceDeployment": InferenceDeployment,
    "RegionalCluster": RegionalCluster,
    "GPUProfile": GPUProfile,
}


class InvalidResource(ValueError):
    """A resource that the API refuses; `problems` holds (field path, message) pairs."""

    def __init__(self, name: str, problems: list[tuple[str, str]]) -> None:
        self.name = name
        self.problems = problems
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"{name} is invalid:\n{lines}")


def field_path(loc: tuple[int | str, ...], extra_field: str | None = None) -> str:
    """('spec', 'offerings', 0, 'gpuType') -> 'spec.offerings[0].gpuType'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    if extra_field:
        path = f"{path}.{extra_field}" if path else extra_field
    return path


def problems_of(error: ValidationError) -> list[tuple[str, str]]:
    """Field paths (camelCase, as users write them) with messages."""
    out = []
    for item in error.errors(include_url=False):
        ctx = item.get("ctx") or {}
        extra = ctx.get("field") if item["type"] == "cross_field" else None
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            written = str(item["loc"][-1]) if item["loc"] else ""
            camel = to_camel(written)
            # Suggested only where the model has that field (review: max_surge became "did you mean maxSurge?").
            known = camel != written and camel in _wire_names()
            message = f"unknown field (did you mean {camel}?)" if known else "unknown field"
        out.append((field_path(tuple(item["loc"]), extra), message))
    return out


@functools.cache
def _wire_names() -> frozenset[str]:
    """Every field name the API's kinds have on the wire (their JSON schemas' properties, all levels)."""
    names: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for model in MODELS_BY_KIND.values():
        collect(model.model_json_schema(by_alias=True))
    return frozenset(names)


def describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<unnamed>") if isinstance(metadata, Mapping) else "<unnamed>"
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    qualified = f"{namespace}/{name}" if namespace else str(name)
    return f"{obj.get('kind', '<no kind>')} {qualified}"


def _metadata_problems(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the apiserver refuses in metadata before any schema: an object without a name, a name that is
    not a DNS subdomain, a namespace that is not a DNS label (review: `Llama_3 8B` validated ok offline)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return [("metadata", "must be a mapping with a name")]
    problems = []
    name = metadata.get("name")
    if name is None or name == "":
        problems.append(("metadata.name", "is required"))
    elif not isinstance(name, str):
        # Review: `name: 5` was reported as missing under a header that showed it.
        problems.append(("metadata.name", f"must be a string, got {type(name).__name__} {str(name)[:40]!r}"))
    elif len(name) > 253 or not re.fullmatch(DNS_SUBDOMAIN, name):
        problems.append(("metadata.name", f"{name!r} is not a DNS subdomain (lower case, digits, '-', '.')"))
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is not None and not (
            isinstance(values, Mapping) and all(isinstance(v, str) for v in values.values())
        ):
            problems.append((f"metadata.{field}", "must map names to strings (quote numbers and booleans)"))
    namespace = metadata.get("namespace")
    if namespace is not None and not (
        isinstance(namespace, str) and len(namespace) <= 63 and re.fullmatch(DNS_LABEL, namespace)
    ):
        problems.append(("metadata.namespace", f"{namespace!r} is not a DNS label (lower case, digits, '-')"))
    return problems


def _as_json(obj: Mapping[str, Any]) -> str:
    """The object as JSON. `read_documents` keeps unquoted times as the text kubectl sends; a datetime from
    another YAML reader (`yaml.safe_load`) is sent as its isoformat, which need not be the text it was read from."""

    def text(value: object) -> str:
        if isinstance(value, datetime | date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not a JSON value")

    return json.dumps(obj, default=text, allow_nan=False)


def _not_json(value: object, path: str = "") -> list[tuple[str, str]]:
    """Each value JSON (and so the apiserver) cannot carry, by field: .nan and .inf, a key that is not a
    string (an unquoted date), binary or other YAML-only types (found in review: TypeError tracebacks)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(path, f"{value} is not a number JSON can carry (YAML's .nan or .inf)")]
    if isinstance(value, Mapping):
        problems = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                problems.append((where, f"a {type(key).__name__} key; JSON keys are strings (quote it)"))
            problems += _not_json(item, where)
        return problems
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _not_json(v, f"{path}[{i}]")]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return [(path, f"{value} is beyond a 64-bit integer, the most the apiserver reads")]
    if value is None or isinstance(value, str | bool | int | float | datetime | date):
        return []
    return [(path, f"a {type(value).__name__} value is not JSON (a YAML-only type such as !!binary)")]


_WIRE_INTEGERS = 2**63
"""Whole floats below this magnitude are sent as integers (Go's encoding/json writes float64 2.0 as `2`)."""


@functools.cache
def _crd_schema(model: type[BaseModel]) -> dict[str, Any]:
    return openapi_schema(model)


def _as_admitted(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` as the apiserver reads it under the CRD's structural `schema`, before validation:
    - a null on a field that is not nullable is pruned, as if left out (the apiserver then applies the
      default, if any, and a required field is missing, refused naming it). Found in review: `carbon: null`,
      `engine: null`, `capacity.minReplicas: null` (70-odd fields) were refused here ("Input should be an
      object") while `kubectl apply` admitted them; and then a null on a field without a default
      (`offerings[0].hourlyCost: null`) was still refused here, while the apiserver admits it and stores the
      object without the field.
    - a whole-number float where the schema says integer is that integer: kubectl's YAML-to-JSON conversion
      sends `minReplicas: 2.0` as `2` (found in review: refused here as "not a valid integer"). A raw JSON
      client sending `2.0` is refused by the apiserver (README says so)."""
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key) if isinstance(properties, Mapping) else None
            if sub is None and isinstance(extra, Mapping):
                sub = extra
            if sub is None:
                out[key] = item  # unknown (refused by the strict parse) or free-form
            elif item is None and not sub.get("nullable"):
                continue
            else:
                out[key] = _as_admitted(item, sub)
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return [_as_admitted(item, items) for item in value] if isinstance(items, Mapping) else value
    if (
        schema.get("type") == "integer"
        and isinstance(value, float)
        and value.is_integer()
        and abs(value) < _WIRE_INTEGERS
    ):
        return int(value)
    return value


def validate_object(obj: Mapping[str, Any]) -> BaseModel:
    """Parse one object; raise InvalidResource naming each bad field (metadata's and the spec's together)."""
    name = describe(obj)
    if obj.get("apiVersion") != API_VERSION:
        raise InvalidResource(name, [("apiVersion", f"must be {API_VERSION}, got {obj.get('apiVersion')!r}")])
    model = MODELS_BY_KIND.get(str(obj.get("kind")))
    if model is None:
        kinds = ", ".join(sorted(MODELS_BY_KIND))
        raise InvalidResource(name, [("kind", f"must be one of {kinds}, got {obj.get('kind')!r}")])
    problems = _metadata_problems(obj)
    try:
        not_json = _not_json(obj)
        if not_json:
            raise InvalidResource(name, problems + not_json)
        # As the apiserver reads it: JSON, camelCase names only, no coercion. Found in review: the models'
        # Python names (`min_replicas`) and strings or booleans for numbers ("500", `true` for 1) validated
        # "ok" here, and in `simulate --deployments`, where kubectl refuses them.
        admitted = _as_admitted(obj, _crd_schema(model))
        parsed = model.model_validate_json(
            _as_json(admitted), strict=True, by_alias=True, by_name=False, context={ADMISSION: True}
        )
    except ValidationError as error:
        problems += problems_of(error)
    except RecursionError:
        # Found in review: a cyclic or very deep object (an alias inside its own anchor) was a traceback.
        raise InvalidResource(name, [*problems, ("spec", "nested too deeply (or contains itself)")]) from None
    if problems:
        raise InvalidResource(name, problems)
    return parsed


class DocumentsError(ValueError):
    """A YAML file that cannot be read as documents; the message names the file and why."""


def _refused(message: str, event: yaml.Event) -> yaml.composer.ComposerError:
    """The loader's refusal, with the line and column of the event that crossed the line."""
    mark: Any = event.start_mark  # the stubs' Mark types differ between the C and pure-Python loaders
    return yaml.composer.ComposerError(None, None, message, mark)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping: PyYAML keeps the last silently, kubectl's
    decoder refuses it (review: two `metadata:` blocks validated as the second). It reads each plain scalar
    as kubectl does (`kubectl_scalar`): a plain `y`, `Y`, `n` or `N` is a boolean (PyYAML reads a string: a
    `namespace: n` validated here and the apiserver refused it, must be of type string), and numbers and
    times are read as go-yaml reads them, not as PyYAML does."""

    bool_values: ClassVar[dict[str, bool]] = {**yaml.SafeLoader.bool_values, "y": True, "n": False}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Scalar keys as written (a merge key `<<` may be overridden by an explicit one: not a duplicate).
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    # Found in review: an alias inside its own anchor (`spec: &s {a: *s}`) built a cyclic dict that the
    # checks recursed into for ever (RecursionError traceback), nine levels of nine aliases each (531 bytes,
    # "billion laughs") expanded to 9**9 nodes and hung, and ~600 levels of nesting overflowed PyYAML's
    # recursion. kubectl refuses the first two ("excessive aliasing"); no gridshift field nests near 100.
    MAX_DEPTH: ClassVar[int] = 100
    MAX_ALIASED_NODES: ClassVar[int] = 100_000

    def compose_document(self) -> yaml.Node | None:
        self._open_anchors: list[str] = []  # anchors of the collections being composed (the node's ancestors)
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it expands to, aliases included
        self._aliased = 0
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _refused(
                    f"alias *{event.anchor} refers to a node that contains it (a recursive structure)", event
                )
            node = super().compose_node(parent, index)
            self._aliased += self._sizes.get(id(node), 1)
            if self._aliased > self.MAX_ALIASED_NODES:
                raise _refused(f"excessive aliasing: aliases expand to over {self.MAX_ALIASED_NODES:,} nodes", event)
            return node
        if len(self._open_anchors) >= self.MAX_DEPTH:
            raise _refused(f"nested too deeply (more than {self.MAX_DEPTH} levels)", event)
        # Every node being composed is pushed (an empty name when it has no anchor): the stack's length is the depth.
        self._open_anchors.append(getattr(event, "anchor", None) or "")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()
        children = node.value if isinstance(node, yaml.SequenceNode) else ()
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        return node

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        # A plain scalar's tag is the type kubectl would read it as; a merge key `<<` stays one.
        if kind is yaml.ScalarNode and implicit[0] and value != "<<":
            return _TAGS[type(kubectl_scalar(value))]
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag

    def construct_text(self, node: yaml.ScalarNode) -> str:
        """A scalar as the text written (a time, which go-yaml hands kubectl as a string)."""
        return str(self.construct_scalar(node))

    def construct_kubectl_number(self, node: yaml.ScalarNode) -> int | float:
        """An `!!int` or `!!float` (a plain number, or a tag written so), read as kubectl reads it."""
        value = kubectl_scalar(self.construct_scalar(node))
        wanted = _TAGS_TYPE[node.tag]
        if type(value) is int and wanted is float:
            value = float(value)  # go-yaml reads `!!float 3` as 3.0
        if type(value) is not wanted:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}", node.start_mark
            )
        assert isinstance(value, int | float)
        return value


_TAGS: dict[type, str] = {
    bool: "tag:yaml.org,2002:bool",
    type(None): "tag:yaml.org,2002:null",
    int: "tag:yaml.org,2002:int",
    float: "tag:yaml.org,2002:float",
    str: "tag:yaml.org,2002:str",
}
_TAGS_TYPE = {tag: kind for kind, tag in _TAGS.items()}
_UniqueKeyLoader.add_constructor(_TAGS[int], _UniqueKeyLoader.construct_kubectl_number)
_UniqueKeyLoader.add_constructor(_TAGS[float], _UniqueKeyLoader.construct_kubectl_number)
# Found in review: PyYAML read an unquoted time (`measuredAt: 2026-11-27 00:00:00Z`) as a datetime and the
# check sent its isoformat (`2026-11-27T00:00:00+00:00`), which the CRD's pattern admits; kubectl sends the
# text as written, which the pattern refuses. A time tagged `!!timestamp` is its text too.
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_text)

_WORDS: dict[str, bool | float | None] = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"], False),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], None),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], math.inf),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], -math.inf),
}
"""go-yaml v2's table of words (resolve.go's resolveMap)."""
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
"""go-yaml v2's yamlStyleFloat: what it reads as a float after the integers (an exponent without a dot or
sign, `1e3`, is one)."""
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
"""What Go's strconv.ParseFloat reads of a scalar that starts with a dot (no `_`: ParseFloat refuses it)."""


def _go_uint(text: str) -> int | None:
    """Go's strconv.ParseUint(text, 0, 64): `0b`, `0o`, `0x` (either case) or a leading `0` (octal) sets the
    base; None where Go refuses it (a digit outside the base, beyond 64 bits, a sign)."""
    base, digits = 10, text
    if text[:1] == "0":
        prefix = text[1:2].lower()
        base, digits = (
            ({"b": 2, "o": 8, "x": 16}[prefix], text[2:]) if len(text) >= 3 and prefix in "box" else (8, text[1:])
        )
    allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"[:base]
    if not text or not all(c in allowed for c in digits):
        return None
    if len(digits.lstrip("0")) > 64:
        # Past 64 bits in any base, and short of Python's 4,300-digit limit on int(): found in review, a plain
        # scalar of 4,301 ones raised ValueError through `gridshift validate` as a traceback.
        return None
    value = int(digits, base) if digits else 0
    return value if value < 2**64 else None


def _go_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64): a sign, then as `_go_uint`, within int64."""
    negative = text[:1] == "-"
    magnitude = _go_uint(text[1:] if text[:1] in ("-", "+") else text)
    if magnitude is None:
        return None
    value = -magnitude if negative else magnitude
    return value if -(2**63) <= value < 2**63 else None


def kubectl_scalar(text: str) -> bool | int | float | str | None:
    """A plain YAML scalar as `kubectl apply` reads it: go-yaml v2's resolve (sigs.k8s.io/yaml), before JSON.
    Found in review: PyYAML's YAML 1.1 reads differ, so `gridshift validate` checked another value than the
    apiserver got. PyYAML read `1:30` as 90 (sexagesimal; go-yaml: the string "1:30", must be of type
    number); `1e3`, `1.5e3`, `-.5`, `0o17`, `0X1F` and `08` as strings (go-yaml: numbers,
    so `ttftP95Ms: 1e3` was refused here and admitted, `revision: 1234e56` admitted here and refused);
    `2026-11-27 00:00:00Z` as a time (go-yaml keeps the text). A timestamp is the text as written here."""
    if text in _WORDS:
        return _WORDS[text]
    if text[:1] == ".":
        return _finite(float(text), text) if _DOT_FLOAT.fullmatch(text) else text
    if text[:1] not in tuple("+-0123456789"):
        return text
    # A time (`2026-11-27`) is tried first and kept as its text: never a number, so the text below.
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is None:
        number = _go_uint(plain)
    if number is not None:
        return number
    # Whatever ParseInt refused but the float form matches (`08`, `1e3`, `1.`, or an integer beyond 64 bits).
    return _finite(float(plain), text) if _GO_FLOAT.fullmatch(plain) else text


def _finite(value: float, text: str) -> float | str:
    """Go's ParseFloat refuses a float beyond float64 (`1e999`) and go-yaml keeps the text as a string."""
    return value if math.isfinite(value) else text


def read_documents(path: Path) -> list[Any]:
    """The YAML documents of `path` that are not empty (a file of CRs, as `kubectl apply -f` takes)."""
    try:
        return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) if d is not None]
    except OSError as error:
        raise DocumentsError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise DocumentsError(f"{path} is not UTF-8 text (byte {error.start}): YAML files must be UTF-8") from None
    except yaml.YAMLError as error:
        raise DocumentsError(f"{path} is not valid YAML: {error}") from None
    except RecursionError:
        # A backstop to the loader's depth limit (a deep flow collection on a small stack, say).
        raise DocumentsError(f"{path} is nested too deeply to read") from None


def kubectl_objects(documents: list[Any]) -> Iterator[tuple[str, Any, str | None]]:
    """Each object `kubectl apply -f` sends, where it is in the file, and why it cannot be one (or None).

    Found in review: a `kind: List` (what `kubectl get idep -o yaml` writes) was skipped by gridshift validate
    as not ours, exit 0, and its InferenceDeployments never checked, while kubectl applies each item (and
    refused by gridshift simulate --deployments); both read a file through this. As kubectl's decoder does,
    a document with `items` is a list whatever its kind; an item without kind and apiVersion takes the
    list's (`InferenceDeploymentList` -> `InferenceDeployment`). A list with no items is refused, as a file
    with no documents is: nothing would be checked."""
    for index, doc in enumerate(documents, start=1):
        where = f"document {index}"
        if not isinstance(doc, dict):
            yield where, doc, "is not a mapping"
            continue
        items = doc.get("items")
        if items is None:
            yield where, doc, None
            continue
        kind = f"a {doc.get('kind') or 'list'}"
        if not isinstance(items, list):
            yield where, doc, f"({kind}): items must be a list of objects, got {type(items).__name__}"
            continue
        if not items:
            yield where, doc, f"({kind}) has no items: nothing to validate"
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                yield f"{where} item {number}", item, "is not a mapping"
                continue
            if not item.get("kind") and not item.get("apiVersion"):
                item = {
                    **item,
                    "kind": str(doc.get("kind", "")).removesuffix("List"),
                    "apiVersion": doc.get("apiVersion"),
                }
            yield f"{where} item {number}", item, None
