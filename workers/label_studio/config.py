"""Label Studio's label config and annotations, in alrank's terms.

A ``<Choices name="N" toName="T">`` control becomes the schema ``N`` (multi-label when
``choice="multiple"``); the ``<Text name="T" value="$field">`` it points at says which task
field is the item's text. Other controls (spans, boxes, ratings) are left to Label Studio:
alrank ranks for the choices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from workers import limits
from workers.exceptions import InvalidInput
from workers.store import NAME_RE


@dataclass(frozen=True)
class Control:
    """One ``Choices`` control: the schema it feeds."""

    name: str
    """``from_name`` in annotation results, and the alrank schema's name."""
    to_name: str
    labels: list[str]
    multi_label: bool


@dataclass(frozen=True)
class LabelConfig:
    text_field: str
    """The task data field whose value is the item's text (``$text`` -> ``text``)."""
    controls: list[Control]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> LabelConfig:
        return cls(doc["text_field"], [Control(**c) for c in doc["controls"]])

    def control(self, name: str) -> Control | None:
        return next((c for c in self.controls if c.name == name), None)

    @property
    def schemas(self) -> list[dict]:
        return [{"name": c.name, "labels": c.labels, "multi_label": c.multi_label} for c in self.controls]


def parse_label_config(xml: str) -> LabelConfig:
    """The choices a label config asks for and the text they are about; InvalidInput says
    what alrank cannot rank for."""
    try:
        root: Element = ElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise InvalidInput(f"the label config is not XML alrank can read: {exc}") from exc
    texts = {t.get("name"): t.get("value", "") for t in root.iter("Text")}
    controls: list[Control] = []
    fields = set()
    for tag in root.iter("Choices"):
        name, to_name = tag.get("name") or "", tag.get("toName") or ""
        if not NAME_RE.match(name):
            raise InvalidInput(
                f"<Choices name={name!r}>: alrank names a schema after it, so use 1-64 letters, "
                "digits, '_', '.' or '-'"
            )
        value = texts.get(to_name)
        if value is None:
            raise InvalidInput(
                f'<Choices name="{name}"> labels {to_name!r}, which is not a <Text>: alrank ranks text'
            )
        if not value.startswith("$") or len(value) < 2:
            raise InvalidInput(f'<Text name="{to_name}"> needs value="$field" naming the task\'s text field')
        fields.add(value[1:])
        labels = [c.get("alias") or c.get("value") or "" for c in tag.iter("Choice")]
        labels = [label for label in labels if label]
        if len(set(labels)) < 2:
            raise InvalidInput(f'<Choices name="{name}"> needs at least two distinct <Choice> values')
        controls.append(Control(name, to_name, labels, tag.get("choice", "single") == "multiple"))
    if not controls:
        raise InvalidInput(
            "the label config has no <Choices>: alrank ranks for classification, e.g. "
            '<Choices name="label" toName="text"><Choice value="a"/><Choice value="b"/></Choices> '
            'over <Text name="text" value="$text"/>'
        )
    if len(fields) > 1:
        raise InvalidInput(
            f"the <Choices> label different texts ({sorted(fields)}); alrank ranks one text a task"
        )
    if len({c.name for c in controls}) != len(controls):
        raise InvalidInput("two <Choices> share a name; each becomes a schema, so names must differ")
    return LabelConfig(fields.pop(), controls)


def task_item(config: LabelConfig, task: dict) -> dict:
    """A Label Studio task as an alrank item: its id, its text, the task id in metadata."""
    data = task.get("data") or {}
    text = data.get(config.text_field)
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return {
        "id": str(task["id"]),
        "text": text[: limits.MAX_TEXT_CHARS],
        "vector": None,
        "metadata": {"label_studio_task": task["id"]},
    }


def annotator_name(completed_by: Any) -> str:
    """The alrank annotator for Label Studio's ``completed_by`` (a user id, or the user)."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return f"label-studio-user-{completed_by}"


def annotation_labels(config: LabelConfig, annotation: dict) -> dict[str, Any]:
    """Per schema, the label an annotation gives (a list for multi-label); a cancelled
    (skipped) annotation gives none."""
    if annotation.get("was_cancelled"):
        return {}
    labels: dict[str, Any] = {}
    for region in annotation.get("result") or []:
        control = config.control(region.get("from_name", ""))
        if control is None or region.get("type") != "choices":
            continue
        chosen = [c for c in (region.get("value") or {}).get("choices") or [] if c in control.labels]
        if not chosen:
            continue
        labels[control.name] = sorted(set(chosen), key=chosen.index) if control.multi_label else chosen[0]
    return labels


def prediction_result(config: LabelConfig, predicted: dict[str, tuple[Any, float | None]]) -> list[dict]:
    """Label Studio result regions pre-annotating each schema's predicted label, with the
    model's confidence as the region's score."""
    regions = []
    for control in config.controls:
        if control.name not in predicted:
            continue
        label, confidence = predicted[control.name]
        if label is None:
            continue
        region: dict[str, Any] = {
            "from_name": control.name,
            "to_name": control.to_name,
            "type": "choices",
            "value": {"choices": list(label) if isinstance(label, list) else [label]},
        }
        if confidence is not None:
            region["score"] = round(float(confidence), 4)
        regions.append(region)
    return regions
