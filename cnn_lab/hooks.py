"""Looking at a network while it runs: forward hooks (a function PyTorch calls with a module's inputs and output
each time the module runs) on some of its modules, with the network in evaluation mode for as long as they are on."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from torch import nn

Hook = Callable[[nn.Module, tuple, object], object]  # (module, inputs, output) -> None, or a replacement output


@contextlib.contextmanager
def hooked(model: nn.Module, hooks: Iterable[tuple[nn.Module, Hook]]) -> Iterator[None]:
    """Within the block: each (module, hook) registered, and `model` in eval mode (batch norms use their running
    statistics, dropout is off). After it, whatever happened: the hooks removed and the model's mode restored."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
