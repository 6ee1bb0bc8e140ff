"""modelyard's inference server: the Open Inference Protocol over gRPC and HTTP on onnxruntime.

Adapters (``grpc/``, ``http/``) convert wire messages to :mod:`inference_server.core.types`
and call one transport-free :class:`inference_server.service.InferenceService`, which uses the
model manager (loaded versions, atomic swaps), the micro-batcher and the onnxruntime runtime.
Nothing below the service calls back up. ``app.py`` is the composition root, ``cli.py`` the
``modelyard serve`` command, ``admin/`` the admin calls applied on every worker process
(and the supervisor of ``--workers N``), ``auth.py`` the bearer-token check.

Where the time goes (gRPC, reference LightGBM model, one core; the machine was shared by
other engineers' jobs while measuring, so compare only within one line):

* A bare grpc.aio unary call costs ~180 us of the core; onnxruntime ~80-150 us per session run
  in the server (cold caches; 10-30 us in a tight loop), plus a thread hand-over. So the
  session must run once per *batch*, not per request: the micro-batcher is what makes the
  server keep up with a bare echo server.
* c=64, perf_analyzer: bare echo 5,374-5,652 req/s; modelyard 5,772-5,779 (batches of ~60
  rows, p50 ~11 ms). With batching off: 2,076. With Triton's ``delay=0`` rule alone: 2,414.
* c=64, the asyncio probe (``benchmarks/server_core_probe.py``): 0.93-0.97 of the echo, p99
  12-17 ms (``gc.freeze()`` after start took p99 from 27-34 ms down).
* c=1, perf_analyzer: echo p50 0.22 ms, modelyard 0.58 ms -- the session thread hand-over and
  the single-row run (~0.1 ms each on this busy core) are the difference.
* 512-row raw requests: server ~120 k rows/s (4.2 ms per session run) while in-process
  onnxruntime in the same minutes measured 45-63 k rows/s -- i.e. the server is not the
  bottleneck; the busy machine makes the in-process figure unreliable.
* One bidirectional stream: 5,179 messages/s vs unary 1,269 (c=1) / 2,928 (c=64) in the same
  run. Peak RSS per worker with the reference model loaded, after load: 111-114 MB.
* Two workers (SO_REUSEPORT), perf_analyzer unpinned on the same two cores: requests split
  33,326 / 33,818 between the workers; 6,272 req/s vs 3,728-4,445 for one worker.
"""

from __future__ import annotations
