"""Which class a spec's `model:` names, and where it came from.

`model:` is either an import path `package.module:Class`, imported from the spec file's folder, the current
directory, then `sys.path`; or a name registered under the entry-point group `tuner.models` by an installed package.
The built-in models are registered there by tuner's own pyproject.toml; `BUILTIN` holds the same table, so that a
source checkout that was never installed (a Ray job's copy of tuner) resolves them the same way.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tuner.errors import ModelContractError
from tuner.recsys.models.base import Recommender
from tuner.recsys.models.contract import check_class
from tuner.vocabulary import MODEL_ENTRY_POINTS, is_import_path

BUILTIN = {
    "mf": "tuner.recsys.models.mf:MF",
    "lightgcn": "tuner.recsys.models.lightgcn:LightGCN",
    "ngcf": "tuner.recsys.models.ngcf:NGCF",
    "gat": "tuner.recsys.models.gat:GAT",
}


@dataclass(frozen=True)
class Registered:
    name: str
    target: str  # module:Class
    distribution: str  # who registered it
    version: str


def registered() -> dict[str, Registered]:
    """Every registered model name: the built-ins, then installed packages' entry points. ModelContractError when
    two packages register one name for different classes."""
    models = {name: Registered(name, target, "tuner", _version("tuner")) for name, target in BUILTIN.items()}
    for entry in metadata.entry_points(group=MODEL_ENTRY_POINTS):
        dist = entry.dist.name if entry.dist is not None else "unknown"
        version = entry.dist.version if entry.dist is not None else "unknown"
        known = models.get(entry.name)
        if known is not None and known.target != entry.value:
            raise ModelContractError(f"model: {entry.name} is registered by {known.distribution} ({known.target}) and by "
                                     f"{dist} ({entry.value}); uninstall one, or name the class as {entry.value}")
        models[entry.name] = Registered(entry.name, entry.value, dist if known is None else known.distribution,
                                        version if known is None else known.version)
    return models


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class ModelSource:
    """A spec's `model:` resolved: the class's import path and the folders tried before sys.path. Picklable, so a Ray
    worker loads the same class (folders that do not exist on its node are skipped: a job's working directory is on
    its sys.path there)."""

    model: str  # as the spec says
    target: str  # module:Class
    folders: tuple[str, ...] = ()
    distribution: str | None = None  # for a registered name
    version: str | None = None

    def load(self) -> type[Recommender]:
        module_name, _, qualname = self.target.partition(":")
        for folder in reversed(self.folders):
            if os.path.isdir(folder) and folder not in sys.path:
                sys.path.insert(0, folder)
        where = f"model: {self.model}"
        try:
            obj = importlib.import_module(module_name)
        except Exception as exc:
            searched = ", ".join([*self.folders, "sys.path"])
            raise ModelContractError(f"{where}: cannot import {module_name} ({type(exc).__name__}: {exc}); "
                                     f"looked in {searched}") from None
        for part in qualname.split("."):
            if not hasattr(obj, part):
                raise ModelContractError(f"{where}: {module_name} has no {qualname}")
            obj = getattr(obj, part)
        return check_class(obj, where)

    def module_file(self) -> Path | None:
        """The file of the class's module, once loaded."""
        module = sys.modules.get(self.target.partition(":")[0])
        file = getattr(module, "__file__", None)
        return Path(file) if file else None

    def origin(self) -> dict:
        """Where the model came from, for provenance: the registering distribution and its version, or the module's
        file and its SHA-256."""
        if self.distribution is not None:
            return {"model": self.model, "target": self.target, "distribution": self.distribution,
                    "version": self.version}
        file = self.module_file()
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file and file.is_file() else None
        return {"model": self.model, "target": self.target, "file": str(file) if file else None, "sha256": digest}


def locate(model: str, spec_folder: str | Path | None = None) -> ModelSource:
    """The source of `model`: a registered name, or an import path searched in the spec's folder, the current
    directory, then sys.path."""
    if is_import_path(model):
        folders = [str(Path(spec_folder).resolve())] if spec_folder is not None else []
        cwd = os.getcwd()
        return ModelSource(model, model, tuple(dict.fromkeys([*folders, cwd])))
    models = registered()
    if model not in models:
        raise ModelContractError(f"model: unknown model {model!r}; expected one of {', '.join(sorted(models))} "
                                 "(tuner models lists them), or an import path package.module:Class")
    entry = models[model]
    return ModelSource(model, entry.target, (), entry.distribution, entry.version)


def shippable_files(source: ModelSource) -> Path | None:
    """The top-level module file or package folder of an import-path model found in one of its folders (not
    installed): what `tuner submit` copies into the job, so that worker nodes import it too."""
    if source.distribution is not None:
        return None
    top = source.target.partition(":")[0].split(".")[0]
    for folder in source.folders:
        for candidate in (Path(folder) / top, Path(folder) / f"{top}.py"):
            if candidate.exists():
                return candidate
    return None
