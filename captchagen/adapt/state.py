"""What adapt has made in its output folder, and which stages finished with which inputs (OUT/adapt.json,
written atomically).

{"version": 2, "made": ["fit", "data", "runs"], "stages": {"train": {"key": ..., "inputs": {...},
"done": false}}, "estimates": {"start": {"base": 0.41, "synthetic": 0.33}, "result": {...}}, "labelled": {...}}:
the estimates, on the pool, of the models each comparison read, and with `--labels` their accuracy on the
labelled images that comparison used (a file without them is read as having none).

A folder is listed in `made` before the stage that creates it starts, so adapt knows what it may replace; it
never replaces or deletes anything else. A file it cannot read is a notice, and then nothing in OUT counts as
adapt's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from captchagen import atomic
from captchagen.adapt.plan import DATA, FIT, RUNS, STATE, Stage

VERSION = 2


@dataclass
class StageRecord:
    key: str
    inputs: dict[str, str]
    done: bool


@dataclass
class State:
    path: Path
    made: list[str] = field(default_factory=list)
    stages: dict[str, StageRecord] = field(default_factory=dict)
    notice: str | None = None  # why the file on disk was not taken as it is
    estimates: dict[str, dict[str, float]] = field(default_factory=dict)
    labelled: dict[str, dict[str, float]] = field(default_factory=dict)  # accuracy on labels, where given

    @classmethod
    def read(cls, out: Path) -> State:
        path = out / STATE
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            return cls(path, notice=f"cannot read {path} ({e.strerror}); adapt treats nothing in {out} as its own")
        try:
            return cls._parse(path, json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return cls(path, notice=f"{path} is damaged ({type(e).__name__}: {e}); adapt treats nothing in {out} "
                                    "as its own")  # fmt: skip

    @classmethod
    def _parse(cls, path: Path, data: object) -> State:
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        if data.get("version") is None and isinstance(data.get("done"), dict):  # written by the first adapt
            steps = {*data["done"], *data.get("started", {})}
            made = [FIT] * ("fit" in steps) + [DATA] * ("make" in steps) + [RUNS] * bool(data.get("made"))
            return cls(path, made=made, notice=f"{path} was written by an earlier captchagen: every stage is "
                                                "done again")  # fmt: skip
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, where this captchagen writes {VERSION}")
        made = [str(m) for m in data["made"]]
        stages = {}
        for name, s in dict(data["stages"]).items():
            inputs = {str(k): str(v) for k, v in dict(s["inputs"]).items()}
            stages[str(name)] = StageRecord(str(s["key"]), inputs, bool(s["done"]))

        def figures(key: str) -> dict[str, dict[str, float]]:
            saved = dict(data.get(key, {}))
            return {str(k): {str(m): float(e) for m, e in dict(v).items()} for k, v in saved.items()}

        return cls(path, made, stages, estimates=figures("estimates"), labelled=figures("labelled"))

    def save(self) -> None:
        stages = {n: {"key": r.key, "inputs": r.inputs, "done": r.done} for n, r in self.stages.items()}
        atomic.write_json(
            self.path,
            {"version": VERSION, "made": self.made, "stages": stages, "estimates": self.estimates,
             "labelled": self.labelled},
        )  # fmt: skip

    def keep_estimates(self, which: str, estimates: dict[str, float], labelled: dict[str, float] | None = None) -> None:
        self.estimates[which] = estimates
        if labelled:
            self.labelled[which] = labelled
        else:
            self.labelled.pop(which, None)
        self.save()

    def owns(self, top: str) -> bool:
        return top in self.made

    def claim(self, top: str) -> None:
        """Record that adapt is about to make OUT/`top` (it does not exist yet)."""
        if top not in self.made:
            self.made.append(top)
            self.save()

    def is_done(self, stage: Stage) -> bool:
        r = self.stages.get(stage.name)
        return r is not None and r.done and r.key == stage.key

    def begun(self, stage: Stage) -> bool:
        """Begun with these very inputs and not finished: to be gone on with, not started afresh."""
        r = self.stages.get(stage.name)
        return r is not None and not r.done and r.key == stage.key

    def changed(self, stage: Stage) -> list[str]:
        """The inputs that differ from those the stage last ran with (empty if it never ran)."""
        r = self.stages.get(stage.name)
        if r is None:
            return []
        return sorted(k for k in {*r.inputs, *stage.inputs} if r.inputs.get(k) != stage.inputs.get(k))

    def start(self, stage: Stage) -> None:
        self.stages[stage.name] = StageRecord(stage.key, dict(stage.inputs), False)
        self.save()

    def finish(self, stage: Stage) -> None:
        self.stages[stage.name] = StageRecord(stage.key, dict(stage.inputs), True)
        self.save()
