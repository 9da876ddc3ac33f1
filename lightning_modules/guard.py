"""The NaN/inf guard's device-side record (``method.nan_guard=stop``): every update adds its losses and its
gradient norm to a few tensors on the device — the first iteration, quantity and value that were not finite —
and nothing is read back to the host until ``check()`` (every ``method.nan_check_every`` iterations, before
every checkpoint and when training ends). An iteration therefore never waits for the device because of the
guard; the price is that a run can go on for up to ``nan_check_every`` iterations after the first NaN before it
stops, and that its weights are NaN by then — which is why ``check()`` also runs before a checkpoint is written,
so the last checkpoint on disk is always a good one.

``skip`` (drop a non-finite step) needs the answer before ``optimizer.step()`` and so keeps its host sync per
update: it is a debugging mode (``GANModule._loss_is_finite`` / ``_gradients_are_finite``).
"""

from __future__ import annotations

import torch

from suite.errors import DivergenceError

NO_ITERATION = -1


class NonFiniteRecord:
    """The first non-finite quantity of a run, recorded on the device without host syncs.

    Quantities are named ``"<optimizer>/<loss part>"``, ``"<optimizer>/total"`` and ``"<optimizer>/gradient"``;
    each name gets a small integer code the first time it is seen (host-side, names are static per method).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[tuple[str, ...], torch.Tensor] = {}  # per name tuple: its codes, on the device
        self._state: torch.Tensor | None = None  # float64 [first iteration, code, value]; iteration −1 = none yet

    def _codes_for(self, names: tuple[str, ...], device: torch.device) -> torch.Tensor:
        codes = self._codes.get(names)
        if codes is None or codes.device != device:
            for name in names:
                if name not in self.names:
                    self.names.append(name)
            codes = torch.tensor([self.names.index(n) for n in names], dtype=torch.float64, device=device)
            self._codes[names] = codes
        return codes

    def observe(self, names: tuple[str, ...], values: list[torch.Tensor], iteration: int) -> None:
        """Record ``values`` (scalars, detached) of ``names`` at ``iteration``: kept only if nothing was
        recorded before and one of them is not finite (the first such, in ``names`` order)."""
        stacked = torch.stack([v.detach().to(torch.float64).sum() for v in values])
        device = stacked.device
        if self._state is None or self._state.device != device:
            self._state = torch.tensor([NO_ITERATION, 0.0, 0.0], dtype=torch.float64, device=device)
        bad = ~torch.isfinite(stacked)
        first = torch.argmax(bad.to(torch.uint8))
        candidate = torch.stack([torch.full_like(stacked[0], float(iteration)), self._codes_for(names, device)[first],
                                 stacked[first]])
        fresh = bad.any() & (self._state[0] == NO_ITERATION)
        self._state = torch.where(fresh, candidate, self._state)

    def first(self, reduce_any=None) -> tuple[int, str, float] | None:
        """The first (iteration, name, value) recorded, or None — one host sync. ``reduce_any(bool) -> bool``
        tells whether any DDP rank recorded one (every rank must then stop together)."""
        if self._state is None:
            found = False
            state = None
        else:
            state = self._state.tolist()
            found = state[0] != NO_ITERATION
        if reduce_any is not None and reduce_any(found) and not found:
            return (NO_ITERATION, "another rank's loss", float("nan"))
        if not found:
            return None
        return int(state[0]), self.names[int(state[1])], state[2]

    def check(self, current_iteration: int, reduce_any=None) -> None:
        """Raise ``DivergenceError`` naming the first non-finite quantity and its iteration, if any."""
        first = self.first(reduce_any)
        if first is None:
            return
        iteration, name, value = first
        optimizer, _, part = name.partition("/")
        what = f"the gradient of {optimizer}" if part == "gradient" else f"loss {name}"
        when = f"at iteration {iteration}" if iteration != NO_ITERATION else "on another DDP rank"
        raise DivergenceError(
            f"{what} became {value} {when} (found at iteration {current_iteration}; the guard is read every "
            f"method.nan_check_every iterations and before each checkpoint); the run stopped and the last good checkpoint "
            f"is kept (set method.nan_guard=skip to drop such steps instead, or lower the learning rate)."
        )
