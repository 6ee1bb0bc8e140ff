"""The gRPC ceiling: a bare grpc.aio Open Inference Protocol server on uvloop, no model.

It parses every ModelInferRequest and answers a ModelInferResponse shaped like the model's
(label and probabilities per row, raw), so it costs exactly what the protocol costs. It also
answers Triton's ModelConfig so perf_analyzer can drive it, and ModelStreamInfer.

Run: ``python -m benchmarks.echo_grpc --port-file FILE [--model reference]``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import uvloop

from benchmarks.messages import echo_response
from benchmarks.portfile import write_ports
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pb_grpc
from inference_server.grpc._generated import model_config_pb2 as mc

N_FEATURES = 32


class EchoInferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """Answers the V2 RPCs for one model without computing anything."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._responses: dict[int, pb.ModelInferResponse] = {}

    async def ServerLive(self, request: pb.ServerLiveRequest, context: object) -> object:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: object) -> object:
        return pb.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: object) -> object:
        return pb.ServerMetadataResponse(
            name="echo", version="1", extensions=["model_configuration"]
        )

    async def ModelReady(self, request: pb.ModelReadyRequest, context: object) -> object:
        return pb.ModelReadyResponse(ready=request.name == self._model)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: object) -> object:
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=self._model,
            versions=["1"],
            platform="onnxruntime_onnx",
            inputs=[tensor(name="input", datatype="FP32", shape=[-1, N_FEATURES])],
            outputs=[
                tensor(name="label", datatype="INT64", shape=[-1]),
                tensor(name="probabilities", datatype="FP32", shape=[-1, 2]),
            ],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: object) -> object:
        config = mc.ModelConfig(
            name=self._model, platform="onnxruntime_onnx", backend="onnxruntime", max_batch_size=0
        )
        config.input.add(name="input", data_type=mc.TYPE_FP32, dims=[-1, N_FEATURES])
        config.output.add(name="label", data_type=mc.TYPE_INT64, dims=[-1])
        config.output.add(name="probabilities", data_type=mc.TYPE_FP32, dims=[-1, 2])
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: object
    ) -> pb.ModelInferResponse:
        n_rows = int(request.inputs[0].shape[0]) if request.inputs else 1
        response = self._responses.get(n_rows)
        if response is None:
            response = self._responses[n_rows] = echo_response(n_rows, self._model)
        return response

    async def ModelStreamInfer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: object
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        async for request in requests:
            response = await self.ModelInfer(request, context)
            yield pb.ModelStreamInferResponse(infer_response=response)


async def serve(port_file: Path, model: str) -> None:
    """Serve on 127.0.0.1 (port chosen by the OS, written to ``port_file``) until killed."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    service = EchoInferenceService(model)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    write_ports(port_file, grpc=port)
    await server.wait_for_termination()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--model", default="reference")
    args = parser.parse_args()
    uvloop.run(serve(args.port_file, args.model))


if __name__ == "__main__":
    main()
