"""What a spec takes from other experiments: `base:` (the best finished trial's configuration) and
`search.warm_start` (the best finished configurations, run first)."""

from __future__ import annotations

from tuner.errors import SpecError
from tuner.experiment.layout import resolve
from tuner.experiment.read import Experiment
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.spec import ExperimentSpec
from tuner.vocabulary import decode_param, param_column


def with_base(spec: ExperimentSpec, directory: str) -> ExperimentSpec:
    """`base:` — `fixed` completed from the best finished trial of the experiment at `directory`: explicitly fixed
    values win, searched names (and the seed, with `seeds`) stay searched."""
    base = Experiment.open(directory).best_hyperparameters()
    skip = set(spec.searched()) | set(spec.fixed.model_fields_set)
    inherited = {k: v for k, v in base.model_dump().items() if k not in skip}
    fixed = Hyperparameters.model_validate({**inherited, **spec.fixed.model_dump(exclude_unset=True)})
    return spec.model_copy(update={"fixed": fixed})


def warm_start(spec: ExperimentSpec) -> list[dict]:
    """search.warm_start: the best finished configurations of the other experiment, its searched names only."""
    if spec.search.warm_start is None:
        return []
    source = Experiment.open(resolve(spec.search.warm_start.experiment, spec.storage))
    finished = source.finished_trials().head(spec.search.warm_start.trials)
    if finished.empty:
        raise SpecError(f"search.warm_start.experiment: {source.directory} has no finished trial to start from")
    names = [name for name in spec.searched() if param_column(name) in finished]
    return [{name: decode_param(name, row[param_column(name)]) for name in names} for _, row in finished.iterrows()]
