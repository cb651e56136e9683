"""Looking at a network while it runs: forward hooks (a function PyTorch calls with a module's inputs and output
each time the module runs) on some of its modules, with the network in evaluation mode for as long as they are on.

A model can be shared: on a class server, every session looking at the pretrained network runs the same object,
each in its own thread. A module's hooks are the module's, not the thread's, so a hook here acts only on the
passes of the thread that put it on; another session's pass through the model meanwhile runs as if it were not
there (it would otherwise record, or stop, someone else's pass)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

from torch import nn

Hook = Callable[[nn.Module, tuple, object], object]  # (module, inputs, output) -> None, or a replacement output


def _in_this_thread(hook: Hook) -> Hook:
    """`hook`, called only for passes run by the thread that is calling this."""
    owner = threading.get_ident()

    def run(module, inputs, output):
        if threading.get_ident() == owner:
            return hook(module, inputs, output)
        return None

    return run


@contextlib.contextmanager
def hooked(model: nn.Module, hooks: Iterable[tuple[nn.Module, Hook]]) -> Iterator[None]:
    """Within the block: each (module, hook) registered for this thread's passes, and `model` in eval mode (batch
    norms use their running statistics, dropout is off). After it, whatever happened: the hooks removed and the
    model's mode restored. A model shared between threads rests in eval mode, so that this changes no mode."""
    handles = [module.register_forward_hook(_in_this_thread(hook)) for module, hook in hooks]
    was_training = model.training
    if was_training:
        model.eval()
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        if was_training:
            model.train()
