"""Pure-PyTorch BPR training: Trainer(model, data, hp).run() yields one EpochResult per epoch. No Ray, no files.

`Callback`s see every epoch start and every batch's loss: a Trainer calls its own and this process's
(`PROCESS_CALLBACKS`, e.g. installed in every Ray worker by a worker setup hook).
"""

from __future__ import annotations

import ctypes
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from tuner.errors import DivergedError
from tuner.recsys import selection
from tuner.recsys.data import SplitData
from tuner.recsys.data.sampling import BPRSampler
from tuner.recsys.hyperparameters import Hyperparameters
from tuner.recsys.metrics import Evaluator, embedding_scores
from tuner.recsys.models import Recommender, build, complete, model_class
from tuner.vocabulary import Objective


@dataclass
class EpochResult:
    epoch: int  # 1-based
    loss: float  # mean over batches of BPR loss + regularisation + the model's auxiliary loss
    bpr_loss: float
    train_seconds: float  # sampling + optimisation
    sample_seconds: float
    eval_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # empty on epochs without evaluation
    # evaluated epochs: the test split's users and each one's metrics ({"recall@20": values, ...})
    test_per_user: tuple[np.ndarray, dict[str, np.ndarray]] | None = field(default=None, repr=False)
    collapsed: bool = False  # training collapsed (see Trainer.run): the last epoch the trainer runs

    @property
    def evaluated(self) -> bool:
        return bool(self.metrics)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# A collapsed model scores every item alike (its embeddings shrunk to nothing, e.g. under a large weight decay): each
# BPR term is -log σ(0) = ln 2, whatever is sampled, and its loss climbs to ln 2 and stays. A learning model's loss
# falls away from ln 2 (a slow one falls slowly: it is not collapsing).
COLLAPSED_BPR = math.log(2)
COLLAPSE_TOLERANCE = 1e-4
COLLAPSE_EPOCHS = 3  # epochs in a row within the tolerance of ln 2, none lower than the one before


class Callback:
    """Hooks into a Trainer's loop; override what you need."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the epoch's triples are drawn."""

    def on_batch_loss(self, trainer: Trainer, epoch: int, loss: torch.Tensor) -> torch.Tensor:
        """A batch's loss before the backward pass; what it returns is the loss optimised."""
        return loss


PROCESS_CALLBACKS: list[Callback] = []  # called by every Trainer of this process, after its own


def _reuse_freed_memory() -> None:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB for reuse instead of handing them back to the kernel
    (its default for blocks over 128 KiB): else every new embedding-table-sized tensor page-faults its memory in
    again, and on CPU that costs as much as the arithmetic (Gowalla: one 18 MB add 18 ms instead of 5, an epoch 40 s
    instead of 35). Process-wide, and a no-op where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 32 * 2**20)  # the largest glibc accepts
    mallopt(m_trim_threshold, 2**31 - 1)


def with_model_defaults(model: str | type[Recommender], hp: Hyperparameters) -> Hyperparameters:
    """`hp` with every hyperparameter of the model: those it sets, and the defaults of the others (what a trial
    records, so that its configuration is complete)."""
    values = complete(model_class(model), hp.model_values())
    return Hyperparameters.model_validate({**hp.model_dump(exclude=set(hp.model_values())), **values})


def build_model_for(model: str | type[Recommender], data: SplitData, hp: Hyperparameters,
                    train: torch.Tensor | None = None, adjacency: torch.Tensor | None = None) -> Recommender:
    """The model (a class, a registered name or an import path) for `data` with `hp`'s model hyperparameters,
    initialised from `hp.seed` (the same seed, the same weights). `train` (the training edges as a tensor) and
    `adjacency` (their normalised adjacency) when built already."""
    cls = model_class(model)
    torch.manual_seed(hp.seed)
    edges = train if train is not None else torch.tensor(data.train)
    return build(cls, data.num_users, data.num_items, edges, hp.model_values(), adjacency)  # the rest: its defaults


class Trainer:
    """Trains `model` on `data.train` with Adam and BPR; `state_dict`/`load_state_dict` make a run resumable.

    Every epoch's randomness is derived from (seed, epoch), so a run resumed at epoch e draws exactly the
    batches and dropout masks an uninterrupted run would have drawn.
    """

    def __init__(
        self,
        model: Recommender,
        data: SplitData,
        hp: Hyperparameters,
        device: torch.device | str = "cpu",
        evaluator: Evaluator | None = None,  # Evaluator(data, hp.k, device, hp.eval_batch_size), when built already
        callbacks: tuple[Callback, ...] = (),
    ):
        # Weight decay shrinks unused embeddings towards zero; once they are subnormal floats, CPU arithmetic on them
        # is 10-100x slower (an ML-100K ablation epoch went from 0.9 s to 44 s). Flushing them to zero changes no
        # metric: they are below 1e-38.
        torch.set_flush_denormal(True)
        _reuse_freed_memory()
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.data = data
        self.hp = hp
        self.sampler = BPRSampler(data.num_users, data.num_items, data.train, hp.samples_per_user)
        self.evaluator = evaluator or Evaluator(data, hp.k, self.device, hp.eval_batch_size)
        optimizer_decay = hp.weight_decay if hp.regularization == "optimizer" else 0.0
        # fused: one pass over each parameter instead of a dozen (Gowalla on CPU: 1.4 ms a step instead of 14)
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr, weight_decay=optimizer_decay, fused=fused or None)
        self.epochs_done = 0
        self.callbacks = callbacks

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epochs_done": self.epochs_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epochs_done = int(state["epochs_done"])

    def run(self) -> Iterator[EpochResult]:
        """Each epoch's result, to the last epoch — or to the end of COLLAPSE_EPOCHS epochs in a row whose BPR loss
        sat at ln 2 without falling, which is evaluated and ends the run (result.collapsed: more epochs would not
        change a collapsed model)."""
        at_ln2, previous = 0, -math.inf
        while self.epochs_done < self.hp.epochs:
            epoch = self.epochs_done + 1
            result = self._train_epoch(epoch)
            pinned = abs(result.bpr_loss - COLLAPSED_BPR) < COLLAPSE_TOLERANCE and result.bpr_loss >= previous - 1e-7
            at_ln2, previous = (at_ln2 + 1 if pinned else 0), result.bpr_loss
            collapsed = at_ln2 >= COLLAPSE_EPOCHS
            if epoch % self.hp.eval_every == 0 or epoch == self.hp.epochs or collapsed:
                start = time.perf_counter()
                result.metrics, result.test_per_user = self.evaluate()
                result.eval_seconds = time.perf_counter() - start
            self.epochs_done = epoch
            result.collapsed = collapsed and epoch < self.hp.epochs
            yield result
            if result.collapsed:
                return

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Metrics on every split, and the test split's users with each one's metrics."""
        self.model.eval()
        users, items = self.model()
        per_user: dict = {}
        metrics = self.evaluator.evaluate(embedding_scores(users, items), per_user=per_user)
        return metrics, per_user["test"]

    def _callbacks(self) -> tuple[Callback, ...]:
        return (*self.callbacks, *PROCESS_CALLBACKS)

    def _train_epoch(self, epoch: int) -> EpochResult:
        hp = self.hp
        start = time.perf_counter()
        callbacks = self._callbacks()
        for callback in callbacks:
            callback.on_epoch_start(self, epoch)
        rng = np.random.default_rng([hp.seed, epoch])
        torch.manual_seed(hp.seed * 1_000_003 + epoch)
        users, positives, negatives = (torch.from_numpy(a).to(self.device) for a in self.sampler.sample(rng))
        sample_seconds = time.perf_counter() - start

        self.model.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        total_bpr = torch.zeros((), dtype=torch.float64, device=self.device)
        n_batches = 0
        for begin in range(0, len(users), hp.batch_size):
            u = users[begin : begin + hp.batch_size]
            p = positives[begin : begin + hp.batch_size]
            n = negatives[begin : begin + hp.batch_size]
            loss, bpr = self._batch_loss(u, p, n)
            for callback in callbacks:
                loss = callback.on_batch_loss(self, epoch, loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            total_bpr += bpr.detach()
            n_batches += 1
        mean_loss = float(total) / max(n_batches, 1)
        if not math.isfinite(mean_loss):
            raise DivergedError(
                f"training diverged: epoch {epoch} loss is {mean_loss} (lr={hp.lr}, weight_decay={hp.weight_decay}); "
                "lower the learning rate"
            )
        return EpochResult(
            epoch=epoch,
            loss=mean_loss,
            bpr_loss=float(total_bpr) / max(n_batches, 1),
            train_seconds=time.perf_counter() - start,
            sample_seconds=sample_seconds,
            eval_seconds=0.0,
        )

    def _batch_loss(self, u: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        users_emb, items_emb = self.model()
        loss, bpr = self._loss(users_emb, items_emb, u, p, n)
        auxiliary = self.model.auxiliary_loss(u, p, n, users_emb, items_emb)
        return (loss, bpr) if auxiliary is None else (loss + auxiliary, bpr)

    def _loss(self, users_emb: torch.Tensor, items_emb: torch.Tensor, u: torch.Tensor, p: torch.Tensor,
              n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, BPR part) of the batch (u, p, n) from the final embeddings."""
        ue = users_emb[u]
        margin = (ue * items_emb[p]).sum(1) - (ue * items_emb[n]).sum(1)
        bpr = F.softplus(-margin).mean()  # -log σ(margin)
        if self.hp.regularization != "embedding_l2" or self.hp.weight_decay == 0:
            return bpr, bpr
        # LightGCN's regulariser: λ · ½‖E⁰ of the batch's users and items‖² / batch size
        u0 = self.model.user_embedding(u)
        p0, n0 = self.model.item_embedding(p), self.model.item_embedding(n)
        reg = 0.5 * (u0.pow(2).sum() + p0.pow(2).sum() + n0.pow(2).sum()) / len(u)
        return bpr + self.hp.weight_decay * reg, bpr


def best_epoch(results: list[EpochResult], metric: str, mode: str = "max") -> EpochResult:
    """The best-validation epoch (`selection`'s rule) of `results` by `metric`, a validation metric: selection
    never looks at test."""
    evaluated = {r.epoch: r for r in results if r.evaluated}
    if not evaluated:
        raise ValueError("no epoch was evaluated")
    users = Objective(metric, mode).users
    chosen = selection.best_epoch([(r.epoch, r.metrics[metric], r.metrics[users]) for r in evaluated.values()], mode)
    return evaluated[chosen if chosen is not None else max(evaluated)]
