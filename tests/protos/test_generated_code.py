"""The generated gRPC code is what protos/generate.py produces from protos/*.proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regeneration_gives_no_diff() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_service_name_and_field_numbers_follow_the_open_inference_protocol() -> None:
    from inference_server.grpc._generated import grpc_service_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    request = pb.ModelInferRequest.DESCRIPTOR.fields_by_name
    assert request["raw_input_contents"].number == 7
    assert request["outputs"].number == 6
    response = pb.ModelInferResponse.DESCRIPTOR.fields_by_name
    assert response["raw_output_contents"].number == 6
    assert pb.InferParameter.DESCRIPTOR.fields_by_name["double_param"].number == 4
