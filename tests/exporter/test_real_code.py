"""Model code as people publish it: each construct exports with zero configuration and matches
eager at new shapes, or is refused with a one-line message naming the cause and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import ExportError, InputError, RnnxError, RnnxWarning
from rnnx.pipeline import export


def _run_eager(model: nn.Module, *args):
    with torch.no_grad():
        return model(*args)


class TupleStateLM(nn.Module):
    """word_language_model's shape: hidden=(h, c) in and out, decoded.view(-1, ntoken)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 6)
        self.rnn = nn.LSTM(6, 8, 2)
        self.head = nn.Linear(8, 12)

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.embed(tokens), hidden)
        return self.head(output).view(-1, 12), hidden


def test_tuple_states_are_named_inputs_paired_with_their_outputs(tmp_path) -> None:
    model = TupleStateLM().eval()
    example = (torch.randint(0, 12, (5, 2)), (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8)))
    result = export(model, tmp_path / "lm", example_inputs=example)
    signature = result.manifest.signature
    assert signature.input_names == ["tokens", "hidden.0", "hidden.1"]
    assert signature.state_pairs == (("hidden_out.0", "hidden.0"), ("hidden_out.1", "hidden.1"))
    assert signature.output("output").dims == ("time*batch", 12)  # the derived axis, in order
    assert signature.streamable and result.report.passed
    session = rnnx.load(tmp_path / "lm")
    tokens = torch.randint(0, 12, (9, 3))
    state = (torch.randn(2, 3, 8), torch.randn(2, 3, 8))
    expected = _run_eager(model, tokens, state)
    got = session.run([tokens.numpy(), state[0].numpy(), state[1].numpy()])
    np.testing.assert_allclose(got["output"], expected[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["hidden_out.1"], expected[1][1].numpy(), atol=1e-5)


def test_run_chunk_returns_every_row_of_a_derived_time_axis(tmp_path) -> None:
    """`rnnx run --chunk` once returned only the last chunk of a time*batch output."""
    model = TupleStateLM().eval()
    example = (torch.randint(0, 12, (5, 2)), (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8)))
    export(model, tmp_path / "lm", example_inputs=example)
    tokens = np.random.default_rng(0).integers(0, 12, (40, 3))
    np.savez(tmp_path / "in.npz", tokens=tokens)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "lm"), "--input",
                                       str(tmp_path / "in.npz"), "--chunk", "10", "-o",
                                       str(tmp_path / "out.npz")])  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = _run_eager(model, torch.from_numpy(tokens), None)[0].numpy()
    with np.load(tmp_path / "out.npz") as out:
        assert out["output"].shape == (120, 12)
        np.testing.assert_allclose(out["output"], expected, atol=1e-5)


class ListStates(nn.Module):
    """A list of per-layer states (rnnoise's shape), one of them optional (None)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.GRU(4, 6, batch_first=True)
        self.second = nn.GRU(6, 5, batch_first=True)

    def forward(self, x, states, extra=(None,)):
        y, h1 = self.first(x, states[0])
        y, h2 = self.second(y, states[1])
        return y, [h1, h2]


def test_list_states(tmp_path) -> None:
    model = ListStates().eval()
    example = (torch.randn(2, 5, 4), [torch.zeros(1, 2, 6), torch.zeros(1, 2, 5)])
    result = export(model, tmp_path / "list", example_inputs=example)
    assert result.manifest.signature.input_names == ["x", "states.0", "states.1"]
    assert result.report.passed and result.manifest.signature.streamable
    stream = rnnx.load(tmp_path / "list").stream(batch=1)
    x = torch.randn(1, 7, 4)
    expected = _run_eager(model, x, [torch.zeros(1, 1, 6), torch.zeros(1, 1, 5)])[0]
    pieces = [stream.step(x[:, i : i + 2].numpy())["output"] for i in range(0, 7, 2)]
    np.testing.assert_allclose(np.concatenate(pieces, 1), expected.numpy(), atol=1e-5)


def test_none_inside_a_tuple_argument(tmp_path) -> None:
    class Forecaster(nn.Module):  # darts' forward(x_in=(past, static_covariates=None))
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x_in):
            past, static = x_in
            _, (h, _) = self.rnn(past)
            return self.head(h[-1])

    model = Forecaster().eval()
    result = export(model, tmp_path / "f", example_inputs=((torch.randn(2, 5, 3), None),))
    assert result.manifest.signature.input_names == ["x_in.0"] and result.report.passed


class ScaledLSTM(nn.LSTM):
    """A subclass that changes its weights in forward before calling the kernel."""

    def forward(self, x, hx=None):
        h0 = x.new_zeros(self.num_layers, x.shape[1], self.hidden_size) if hx is None else hx[0]
        c0 = torch.zeros_like(h0) if hx is None else hx[1]
        weights = [w * 0.5 if "weight_hh" in n else w
                   for n, w in zip(self._flat_weights_names, self._flat_weights)]  # fmt: skip
        y, h, c = torch._VF.lstm(x, (h0, c0), weights, True, self.num_layers, 0.0, False,
                                 False, False)  # fmt: skip
        return y, (h, c)


class DoubledInputGRU(nn.GRU):
    def forward(self, x, hx=None):
        return super().forward(x * 2, hx)


@pytest.mark.parametrize(
    "layer", [ScaledLSTM(3, 5, 2), DoubledInputGRU(3, 5)], ids=["own", "super"]
)
def test_subclass_exports_what_its_forward_computes(tmp_path, layer) -> None:
    layer.eval()
    result = export(layer, tmp_path / "sub", example_inputs=(torch.randn(5, 2, 3),))
    assert result.report.passed
    x = torch.randn(11, 3, 3)
    got = rnnx.load(tmp_path / "sub").run({"x": x.numpy()})["output_0"]
    np.testing.assert_allclose(got, _run_eager(layer, x)[0].numpy(), atol=1e-5)
    # not the raw-weights computation of the parent class
    plain = type(layer).__mro__[1](3, 5, layer.num_layers).eval()
    plain.load_state_dict(layer.state_dict())
    assert not np.allclose(got, _run_eager(plain, x)[0].numpy(), atol=1e-3)


class RawAudioVAD(nn.Module):
    """(batch, samples) -> strided Conv1d -> LSTM with state: a VAD-shaped model."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = nn.Conv1d(1, 8, kernel_size=16, stride=8)
        self.rnn = nn.LSTM(8, 6, batch_first=True)
        self.head = nn.Linear(6, 1)

    def forward(self, audio, h, c):
        frames = self.frontend(audio.unsqueeze(1)).transpose(1, 2)
        y, (h, c) = self.rnn(frames, (h, c))
        return torch.sigmoid(self.head(y)), h, c


def test_raw_audio_axis_stays_dynamic_with_its_minimum(tmp_path) -> None:
    model = RawAudioVAD().eval()
    example = (torch.randn(2, 160), torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    with pytest.warns(RnnxWarning, match="not-streamable"):  # the conv sees 16 samples at once
        result = export(model, tmp_path / "vad", example_inputs=example)
    signature = result.manifest.signature
    assert signature.input("audio").dims == ("batch", "time")
    assert {a.name: (a.min, a.multiple) for a in signature.axes} == {"time": (16, 1)}
    assert result.report.passed and not signature.streamable
    # verified at lengths other than the example's, none below the minimum
    assert {c.time for c in result.report.checks} >= {16, 100}
    session = rnnx.load(tmp_path / "vad")
    audio = torch.randn(3, 1000)
    zeros = torch.zeros(1, 3, 6)
    got = session.run({"audio": audio.numpy()})["output"]
    np.testing.assert_allclose(got, _run_eager(model, audio, zeros, zeros)[0].numpy(), atol=1e-5)
    with pytest.raises(InputError, match="'audio' needs a time size of at least 16, got 8"):
        session.run({"audio": np.zeros((1, 8), np.float32)})
    with pytest.raises(RnnxError, match="cannot stream"):
        session.stream()


class ImageLineRecognizer(nn.Module):
    """CRNN's shape: (batch, 1, height, width) image, width becomes time, a shape assertion."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2),
                                 nn.Conv2d(4, 8, (4, 1)))  # fmt: skip
        self.rnn = nn.LSTM(8, 5, bidirectional=True)

    def forward(self, image):
        features = self.cnn(image)
        b, c, h, w = features.size()
        assert h == 1, "the height of conv must be 1"
        return self.rnn(features.squeeze(2).permute(2, 0, 1))[0]


def test_image_width_is_time_and_shape_assertions_are_not_hazards(tmp_path, recwarn) -> None:
    model = ImageLineRecognizer().eval()
    result = export(model, tmp_path / "ocr", example_inputs=(torch.randn(2, 1, 8, 20),))
    assert not [w for w in recwarn if issubclass(w.category, RnnxWarning)]
    signature = result.manifest.signature
    assert signature.input("image").dims == ("batch", 1, 8, "time")
    assert {a.name: (a.min, a.multiple) for a in signature.axes} == {"time": (2, 1)}
    image = torch.randn(3, 1, 8, 36)
    got = rnnx.load(tmp_path / "ocr").run({"image": image.numpy()})["output"]
    np.testing.assert_allclose(got, _run_eager(model, image).numpy(), atol=1e-5)


def test_frame_stacking_takes_multiples_of_its_step(tmp_path) -> None:
    class StackedFrames(nn.Module):  # 4 frames stacked into one step: time must divide by 4
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(12, 4, batch_first=True)

        def forward(self, x):
            b, t, f = x.shape
            return self.rnn(x.reshape(b, t // 4, 4 * f))[0]

    result = export(StackedFrames().eval(), tmp_path / "s", example_inputs=(torch.randn(2, 8, 3),))
    signature = result.manifest.signature
    assert {a.name: (a.min, a.multiple) for a in signature.axes} == {"time": (4, 4)}
    assert result.report.passed and {c.time for c in result.report.checks} >= {4, 8, 24, 100}
    with pytest.raises(InputError, match="time size of at least 4 \\+ a multiple of 4, got 10"):
        rnnx.load(tmp_path / "s").run({"x": np.zeros((1, 10, 3), np.float32)})


class BatchMajorConvFrontEnd(nn.Module):
    """A batch-first (batch, channels, time) input reaching a time-major LSTM after a conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(5, 6, 3, padding=1)
        self.rnn = nn.GRU(6, 4)

    def forward(self, spectrogram):
        return self.rnn(self.conv(spectrogram).permute(2, 0, 1))[0]


def test_conv_layout_input_into_a_time_major_layer(tmp_path) -> None:
    model = BatchMajorConvFrontEnd().eval()
    result = export(model, tmp_path / "conv", example_inputs=(torch.randn(2, 5, 7),))
    assert result.manifest.signature.input("spectrogram").dims == ("batch", 5, "time")
    assert result.report.passed


def test_python_logic_on_tensor_values_is_refused_at_its_line(tmp_path) -> None:
    class MaskLoop(nn.Module):  # deepspeech's MaskConv: a Python loop over lengths[i].item()
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 4, batch_first=True)

        def forward(self, x, lengths):
            mask = torch.zeros(x.shape[:2], dtype=torch.bool)
            for i, length in enumerate(lengths):
                if x.shape[1] - length.item() > 0:
                    mask[i, length.item() :] = True
            return self.rnn(x.masked_fill(mask.unsqueeze(-1), 0.0))[0]

    with pytest.raises(ExportError) as error:
        export(MaskLoop().eval(), tmp_path / "mask",
               example_inputs=(torch.randn(3, 6, 3), torch.tensor([6, 4, 2])))  # fmt: skip
    message = str(error.value)
    assert "test_real_code.py:" in message and "length.item()" in message
    assert "fix: compute it with tensor ops" in message and "\n" not in message
    assert not (tmp_path / "mask").exists()


def test_verify_sizes_option(tmp_path) -> None:
    torch.save(nn.GRU(3, 4).state_dict(), tmp_path / "gru.pt")
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(tmp_path / "gru.pt"), "-o", str(tmp_path / "e"),
                                  "--verify-sizes", "2x9,1x40"])  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    checks = json.loads((tmp_path / "e" / "rnnx.json").read_text())["verification"]["checks"]
    cases = {(c["batch"], c["time"]) for c in checks
             if c["chunk"] is None and c["initial_state"] != "nan-input"}  # fmt: skip
    assert cases == {(2, 9), (1, 40)}
    bad = runner.invoke(main, ["verify", str(tmp_path / "e"), "--verify-sizes", "2by9"])
    assert bad.exit_code == 1 and "--verify-sizes expects BATCHxTIME" in bad.output


class BlockLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)

    def forward(self, x):
        outputs, state = [], None
        for start in range(0, x.shape[1], 4):  # blocks of 4 steps: a Python loop over time
            y, state = self.rnn(x[:, start : start + 4], state)
            outputs.append(y)
        return torch.cat(outputs, 1)


class LenForBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4)

    def forward(self, x):
        return self.rnn(x, torch.zeros(1, len(x[0]), 4))[0]  # len() as the batch size


@pytest.mark.parametrize(
    "model, example, line",
    [
        (BlockLoop, torch.randn(2, 8, 3), "for start in range(0, x.shape[1], 4)"),
        (LenForBatch, torch.randn(8, 2, 3), "torch.zeros(1, len(x[0]), 4)"),
    ],
    ids=["range-over-time", "len-for-batch"],
)
def test_python_logic_on_sizes_is_refused_at_its_line(tmp_path, model, example, line) -> None:
    with pytest.raises(ExportError) as error:
        export(model().eval(), tmp_path / "m", example_inputs=(example,))
    message = str(error.value)
    assert message.startswith("test_real_code.py:") and line in message
    assert "fix: keep the" in message and "\n" not in message


def test_declared_io_names_nested_states(tmp_path) -> None:
    model = TupleStateLM().eval()
    io = rnnx.ModelIO(
        inputs=("tokens", "hidden.0", "hidden.1"),
        dims={"tokens": ("time", "batch"), "hidden.0": (None, "batch", None),
              "hidden.1": (None, "batch", None)},
        outputs=("log_probs", "h", "c"),
        state_pairs=(("h", "hidden.0"), ("c", "hidden.1")),
        int_ranges={"tokens": 12},
    )  # fmt: skip
    example = (torch.randint(0, 12, (5, 2)), (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8)))
    result = export(model, tmp_path / "lm", example_inputs=example, io=io)
    assert result.manifest.signature.output_names == ["log_probs", "h", "c"]
    assert result.report.passed and result.manifest.signature.streamable


class PackedWithState(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)

    def forward(self, x, lengths, h0):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, True, enforce_sorted=False)
        y, h = self.rnn(packed, h0)
        return nn.utils.rnn.pad_packed_sequence(y, True, total_length=x.shape[1])[0], h


def test_a_lengths_input_describes_whole_sequences_not_chunks(tmp_path) -> None:
    """Chunking once sliced every input along time, lengths included: such a model does not
    stream, and `rnnx run --chunk` says so (exit 1) instead of crashing."""
    example = (torch.randn(2, 5, 3), torch.tensor([5, 3]), torch.zeros(1, 2, 4))
    result = export(PackedWithState().eval(), tmp_path / "p", example_inputs=example)
    assert result.manifest.signature.state_pairs and not result.manifest.signature.streamable
    np.savez(tmp_path / "in.npz", x=np.ones((2, 6, 3), np.float32), lengths=np.array([6, 2]))
    run = CliRunner().invoke(main, ["run", str(tmp_path / "p"), "--input", str(tmp_path / "in.npz"),
                                    "--chunk", "2", "-o", str(tmp_path / "out.npz")])  # fmt: skip
    assert run.exit_code == 1 and "cannot stream" in run.output
    assert not (tmp_path / "out.npz").exists()


def test_export_prints_nothing(tmp_path, capfd) -> None:
    """No optimizer lines or torch logs: warnings and errors are rnnx's own, one line each."""
    model = RawAudioVAD().eval()
    example = (torch.randn(2, 160), torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    with pytest.warns(RnnxWarning):
        export(model, tmp_path / "vad", example_inputs=example)
    with pytest.raises(ExportError):
        export(BlockLoop().eval(), tmp_path / "b", example_inputs=(torch.randn(2, 8, 3),))
    out, err = capfd.readouterr()
    assert out == "" and err == ""
