"""Batch invariance: a row's answer must not depend on what it was batched with.

Why onnxruntime's answers can depend on the batch (measured with onnxruntime 1.32 on every
kind the converters produce, see ``docs/architecture.md`` "Batch invariance"):

* ``LinearClassifier`` / ``LinearRegressor`` (linear models, scaled and mixed-type pipelines
  ending in one) multiply a lone row with a matrix-vector kernel and a batch with MLAS GEMM;
  the two sum in a different order, so a lone row differs by a few float32 ulps from the same
  row inside any batch of >= 2 rows. Batches of 2..N rows agree with each other.
* ``TreeEnsemble*`` with ``intra_op_num_threads > 1`` splits the *trees* across threads for
  small batches (below ORT's ``parallel_N`` of 50 rows) and the *rows* for large ones: the
  per-row sums are added in a different order, so a row in a batch of 2..49 differs from the
  same row alone or in a batch of 64. With one thread every batch size agrees.
* Double-precision graphs (the converters' ``float64`` precision) were invariant as is.

The rule, applied once per version at load time (:func:`choose_plan`): score a seeded sample
alone, in a full batch and in random sub-batches, and take the first plan under which every
row's output bytes are identical everywhere:

1. run as configured (trees on one thread: no cost at all);
2. pad a lone row to two rows (a copy of itself) and keep the first -- the lone row then takes
   the batch kernel (cost: one extra row for single-row runs only);
3. one onnxruntime thread, then one thread plus padding (multi-threaded tree ensembles).

A version no plan makes invariant on the sample (none found among the converters' kinds) keeps
the configured plan and says ``unverified``; the chosen plan is logged at load and kept on
the model (``OnnxModel.plan``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from inference_server.core.tensors import DTYPES

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelyard.models import ModelSignature

    RunSync = Callable[[list[np.ndarray]], list[np.ndarray]]

SAMPLE_ROWS = 96
"""Rows of the load-time sample: above ORT's ``parallel_N`` (50), so both tree paths run."""

SUB_BATCHES = (1, 2, 3, 5, 8, 17, 33, 64)
"""Sub-batch sizes compared against the full sample batch."""


class BatchPlan(msgspec.Struct, kw_only=True, frozen=True):
    """How a version runs so that its answers are batch invariant.

    Attributes:
        pad_single: run a lone row as two copies of itself and keep the first.
        threads: onnxruntime intra-op threads of the session.
        verdict: ``invariant`` (the plan held on the sample) or ``unverified``.
    """

    pad_single: bool = False
    threads: int = 1
    verdict: str = "invariant"

    @property
    def label(self) -> str:
        """A short description for logs and metadata, e.g. ``pad-single-row, 1 thread``."""
        pad = "pad-single-row" if self.pad_single else "as-is"
        return f"{pad}, {self.threads} thread(s), {self.verdict}"


def sample_inputs(signature: ModelSignature, rows: int = SAMPLE_ROWS, seed: int = 0) -> list[Any]:
    """Seeded rows for every input: normal floats, small integers, a few short strings.

    >>> from modelyard.models import ModelSignature, TensorSpec
    >>> sig = ModelSignature(inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, 3)),),
    ...                      outputs=())
    >>> [a.shape for a in sample_inputs(sig, rows=4)]
    [(4, 3)]
    """
    rng = np.random.default_rng(seed)
    arrays: list[Any] = []
    for spec in signature.inputs:
        shape = (rows, *(1 if d < 0 else d for d in spec.shape[1:]))
        if spec.datatype == "BYTES":
            arrays.append(rng.choice(np.array(["a", "b", "low", "mid", ""], dtype=object), shape))
        elif spec.datatype.startswith("FP"):
            arrays.append((rng.normal(size=shape) * 3).astype(DTYPES[spec.datatype]))
        elif spec.datatype == "BOOL":
            arrays.append(rng.random(shape) < 0.5)
        else:
            arrays.append(rng.integers(0, 4, shape).astype(DTYPES[spec.datatype]))
    return arrays


def run_padded(run: RunSync, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Run one row as a two-row batch (the row twice) and return the first row's outputs.

    >>> import numpy as np
    >>> run_padded(lambda a: [a[0] * 2], [np.ones((1, 2), dtype=np.float32)])[0].shape
    (1, 2)
    """
    doubled = [np.concatenate((a, a)) for a in arrays]
    return [o[:1] if o.ndim and o.shape[0] == 2 else o for o in run(doubled)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def is_invariant(run: RunSync, arrays: list[np.ndarray], *, pad_single: bool) -> bool:
    """Whether every row gets the same output bytes alone, in the full batch and in sub-batches.

    Raises:
        Exception: whatever ``run`` raises (a model that cannot run the sample).
    """
    rows = arrays[0].shape[0]
    full = run(arrays)
    batched = [o for o in full if o.ndim and o.shape[0] == rows]
    for size in SUB_BATCHES:
        if size > rows:
            break
        for start in range(0, rows - size + 1, size):
            part = [a[start : start + size] for a in arrays]
            outs = run_padded(run, part) if pad_single and size == 1 else run(part)
            mine = [o for o in outs if o.ndim and o.shape[0] == size]
            expected = [o[start : start + size] for o in batched]
            if len(mine) != len(expected) or not all(map(_same, mine, expected)):
                return False
    return True


def choose_plan(
    make_run: Callable[[int], RunSync], signature: ModelSignature, threads: int
) -> BatchPlan:
    """The first plan under which the model is batch invariant on a seeded sample.

    Args:
        make_run: returns a session's run function for a number of intra-op threads (the
            configured count is asked for first; another count builds a new session).
        signature: the model's signature (for the sample).
        threads: the configured intra-op thread count.

    Raises:
        Exception: whatever running the sample raises.
    """
    arrays = sample_inputs(signature)
    counts = (threads, 1) if threads > 1 else (threads,)
    for count in counts:
        run = make_run(count)
        for pad in (False, True):
            if is_invariant(run, arrays, pad_single=pad):
                return BatchPlan(pad_single=pad, threads=count)
    return BatchPlan(pad_single=False, threads=threads, verdict="unverified")
