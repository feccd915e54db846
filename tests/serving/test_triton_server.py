"""The python-backend repository on a real tritonserver: concurrent sequences over gRPC equal
eager on each whole sequence, and the faults a deployment meets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rnnx.serving.config import TritonOptions
from rnnx.serving.server import Server
from rnnx.serving.triton import write_repository
from tests.serving.helpers import (
    IDLE_TIMEOUT_S,
    TOL,
    eager,
    grpc_client,
    log_of,
    random_chunks,
    send,
    stream,
)  # fmt: skip


def run_sequences(servers, module, sequences: dict[int, list[np.ndarray]]) -> None:
    """Stream every sequence concurrently (one thread and client each), routed to
    servers[id % len(servers)] as a client-side balancer with sequence affinity would;
    each concatenated output must equal eager on the whole sequence."""

    def one(sequence: int) -> np.ndarray:
        client = grpc_client(servers[sequence % len(servers)])
        return stream(client, sequence, sequences[sequence])

    with ThreadPoolExecutor(len(sequences)) as pool:
        outputs = dict(zip(sequences, pool.map(one, sequences)))
    for sequence, chunks in sequences.items():
        np.testing.assert_allclose(outputs[sequence], eager(module, np.concatenate(chunks)), **TOL)


def test_concurrent_sequences_equal_eager(server, served_model) -> None:
    # Same-length chunks (batched together by the server) and a few odd lengths.
    sequences = {100 + i: random_chunks(i, [4] * 5 + [1 + i % 3]) for i in range(8)}
    run_sequences([server], served_model[0], sequences)


def test_a_vanished_client_is_freed_after_the_idle_timeout(server, served_model) -> None:
    client = grpc_client(server)
    vanished = 200
    send(client, vanished, random_chunks(0, [3])[0], start=True)  # ... and never comes back
    run_sequences([server], served_model[0], {201 + i: random_chunks(i, [3, 3]) for i in range(3)})
    # Triton drops the slot after its idle timeout; the model frees the state at twice that
    # (on its next execute), so that no request Triton still routes finds its state gone.
    time.sleep(2 * IDLE_TIMEOUT_S + 0.5)
    run_sequences([server], served_model[0], {210: random_chunks(9, [2])})
    assert f"sequence {vanished} freed (idle" in log_of(server)
    with pytest.raises(Exception, match="START"):
        send(client, vanished, random_chunks(1, [3])[0])  # no stale state to continue from


def test_a_sequence_restarted_with_start_begins_from_zero_states(server, served_model) -> None:
    client = grpc_client(server)
    for index, chunk in enumerate(random_chunks(1, [3, 3])):
        send(client, 300, chunk, start=index == 0)  # a sequence under way, not ended
    restarted = random_chunks(2, [2, 5])
    np.testing.assert_allclose(
        stream(client, 300, restarted), eager(served_model[0], np.concatenate(restarted)), **TOL
    )


def test_a_wrong_shape_fails_that_client_only(server, served_model) -> None:
    module = served_model[0]
    client = grpc_client(server)
    good = random_chunks(3, [4, 4])
    send_first = send(client, 400, good[0], start=True)
    wrong = np.zeros((4, 7), np.float32)  # 7 features, the model takes 5
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(send, grpc_client(server), 401, wrong, True)
        others = {402: random_chunks(4, [4, 4])}
        pool.submit(run_sequences, [server], module, others).result()
        with pytest.raises(Exception, match=r"input|shape"):
            bad.result()
    # the failed chunk left sequence 400 alone: it goes on from its own state
    rest = send(client, 400, good[1], end=True)
    np.testing.assert_allclose(
        np.concatenate([send_first, rest]), eager(module, np.concatenate(good)), **TOL
    )


def test_a_killed_and_restarted_server_never_answers_from_a_stale_state(
    served_model, tmp_path
) -> None:
    module, _, repository = served_model
    first = Server(repository, 0, 0, log=tmp_path / "first.log")
    ports = (first.http_port, first.grpc_port)
    chunks = random_chunks(5, [3, 3, 3])
    send(grpc_client(first), 500, chunks[0], start=True)
    first.kill()
    with pytest.raises(Exception):  # noqa: B017 - any error; the point is: no output at all
        send(grpc_client(first), 500, chunks[1])
    with Server(repository, *ports, log=tmp_path / "second.log") as second:
        client = grpc_client(second)
        with pytest.raises(Exception, match="START"):
            send(client, 500, chunks[1])  # the state died with the old server
        np.testing.assert_allclose(
            stream(client, 500, chunks), eager(module, np.concatenate(chunks)), **TOL
        )
    first.stop()


def test_sequences_spread_over_two_servers_by_correlation_id(
    server, served_model, tmp_path
) -> None:
    with Server(served_model[2], 0, 0, log=tmp_path / "other.log") as other:
        sequences = {600 + i: random_chunks(20 + i, [3, 2, 4]) for i in range(8)}
        run_sequences([server, other], served_model[0], sequences)
        for log, parity in ((log_of(server), 0), (log_of(other), 1)):
            ended = [s for s in sequences if f"sequence {s} freed (ended)" in log]
            assert ended and all(s % 2 == parity for s in ended)


def test_the_runtime_inside_the_server_is_configurable(served_model, tmp_path) -> None:
    module, export_dir, _ = served_model
    options = TritonOptions(model_name="lstm", runtime="torchscript", idle_timeout_s=5)
    write_repository(export_dir, tmp_path / "repository", options)
    with Server(tmp_path / "repository", 0, 0, log=tmp_path / "server.log") as torchscript:
        sequences = {700 + i: random_chunks(30 + i, [3, 4]) for i in range(3)}
        run_sequences([torchscript], module, sequences)
        assert "with torchscript on cpu" in log_of(torchscript)


def test_aoti_is_served_with_the_trust_given(served_model, tmp_path) -> None:
    """`rnnx serve --runtime aoti --trust-checkpoint`: the trust reaches the server's
    rnnx.load (config.pbtxt's trust_checkpoint), so the compiled package opens there."""
    from rnnx.core.errors import UntrustedCodeError
    from rnnx.pipeline import ExportOptions, export

    module = served_model[0]
    export(module, tmp_path / "pt2", ExportOptions(formats=("pt2",), verify=False))
    untrusted = TritonOptions(model_name="lstm", runtime="aoti", idle_timeout_s=5)
    with pytest.raises(UntrustedCodeError, match="--trust-checkpoint"):
        write_repository(tmp_path / "pt2", tmp_path / "refused", untrusted)
    options = TritonOptions(model_name="lstm", runtime="aoti", idle_timeout_s=5,
                            trust_checkpoint=True)  # fmt: skip
    write_repository(tmp_path / "pt2", tmp_path / "repository", options)
    with Server(tmp_path / "repository", 0, 0, log=tmp_path / "server.log") as aoti:
        run_sequences([aoti], module, {800: random_chunks(40, [3, 4])})
        assert "with aoti on cpu" in log_of(aoti)
