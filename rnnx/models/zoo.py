"""The reference model zoo: small modules shaped like the recurrent models people deploy.

Each has `example_inputs()` and an `rnnx_io` declaring its graph I/O (names, which axes are
batch and time, which outputs carry state back to which inputs). Tests, the demo and the
benchmarks build them; `ZOO` maps a name to a constructor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnx.exporter.model_io import ModelIO

TIME_MAJOR = ("time", "batch", None)
BATCH_MAJOR = ("batch", "time", None)
STACKED_STATE = (None, "batch", None)  # (layers * directions, batch, size)


class ElmanRNN(nn.Module):
    """nn.RNN(10, 20, num_layers=2), tanh, with an explicit initial state (PyTorch's docs)."""

    rnnx_io = ModelIO(
        inputs=("input", "h0"),
        dims={"input": TIME_MAJOR, "h0": STACKED_STATE},
        outputs=("output", "h_n"),
        state_pairs=(("h_n", "h0"),),
    )

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(10, 20, num_layers=2)

    def forward(self, input: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        return self.rnn(input, h0)

    def example_inputs(self) -> tuple[Tensor, ...]:
        return torch.randn(5, 3, 10), torch.randn(2, 3, 20)


class CharRNNCell(nn.Module):
    """The char-level "hello" -> "ohlol" tutorial model: one RNNCell step over a one-hot vocab
    of 4 ("h", "e", "l", "o"); the hidden state (size 4) is read as the next character's logits."""

    VOCAB = "helo"
    rnnx_io = ModelIO(
        inputs=("x", "h"),
        dims={"x": ("batch", None), "h": ("batch", None)},
        outputs=("h_next",),
        state_pairs=(("h_next", "h"),),
    )

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.RNNCell(4, 4)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return self.cell(x, h)

    def example_inputs(self) -> tuple[Tensor, ...]:
        return torch.eye(4)[[0, 1]], torch.zeros(2, 4)


class CharRNNSequence(nn.Module):
    """The same task over a whole sequence: nn.RNN(4, 4), output reshaped to (time·batch, 4)
    for a cross-entropy loss."""

    rnnx_io = ModelIO(inputs=("x",), dims={"x": TIME_MAJOR}, outputs=("logits",))

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)
        return output.reshape(-1, 4)

    def example_inputs(self) -> tuple[Tensor, ...]:
        return (torch.eye(4)[torch.randint(0, 4, (5, 2))],)


class BiLSTMRegressor(nn.Module):
    """2-layer bidirectional batch_first LSTM; Linear(2H -> out) on the last time step.

    With `average_directions`, the two directions are averaged before a Linear(H -> out).
    The initial state is zero (nn.LSTM's default): compare BadBiLSTMRegressor.
    """

    rnnx_io = ModelIO(inputs=("x",), dims={"x": BATCH_MAJOR}, outputs=("y",))

    def __init__(self, input_size: int = 8, hidden: int = 16, out: int = 1,
                 average_directions: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.hidden = hidden
        self.average_directions = average_directions
        self.lstm = nn.LSTM(input_size, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(hidden if average_directions else 2 * hidden, out)

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.lstm(x)
        last = output[:, -1, :]
        if self.average_directions:
            last = (last[:, : self.hidden] + last[:, self.hidden :]) / 2
        return self.head(last)

    def example_inputs(self) -> tuple[Tensor, ...]:
        return (torch.randn(2, 5, 8),)


class BadBiLSTMRegressor(BiLSTMRegressor):
    """THE BAD EXAMPLE, as tutorials write it: the initial state is drawn with torch.randn
    inside forward (outputs change on every call, so nothing can be verified) and its batch
    size is fixed at construction (the exported graph only runs at that batch size).
    `rnnx doctor` must flag both; BiLSTMRegressor is the fixed version."""

    def __init__(self, batch_size: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size

    def forward(self, x: Tensor) -> Tensor:
        h0 = torch.randn(4, self.batch_size, self.hidden)
        c0 = torch.randn(4, self.batch_size, self.hidden)
        output, _ = self.lstm(x, (h0, c0))
        return self.head(output[:, -1, :])


class LSTMClassifier(nn.Module):
    """batch_first LSTM (input 28, hidden 100) over image rows; the final hidden states of all
    layers are concatenated and fed to Linear(-> 10 classes)."""

    rnnx_io = ModelIO(inputs=("x",), dims={"x": BATCH_MAJOR}, outputs=("logits",))

    def __init__(self, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, 100, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(100 * num_layers, 10)

    def forward(self, x: Tensor) -> Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n.permute(1, 0, 2).reshape(x.shape[0], -1))

    def example_inputs(self) -> tuple[Tensor, ...]:
        return (torch.randn(2, 28, 28),)


class Seq2SeqStep(nn.Module):
    """One decoder step of a sequence-to-sequence model: token id -> embedding -> recurrent
    layer with explicit state in and out -> Linear to the vocabulary -> LogSoftmax."""

    def __init__(
        self, kind: str = "lstm", vocab: int = 12, hidden: int = 16, layers: int = 2
    ) -> None:
        super().__init__()
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.kind, self.layers, self.hidden = kind, layers, hidden
        self.embedding = nn.Embedding(vocab, hidden)
        self.rnn = layer(hidden, hidden, num_layers=layers)
        self.out = nn.Linear(hidden, vocab)
        states = ("h0", "c0") if kind == "lstm" else ("h0",)
        finals = ("h_n", "c_n") if kind == "lstm" else ("h_n",)
        self.rnnx_io = ModelIO(
            inputs=("token", *states),
            dims={"token": ("batch",), **{s: STACKED_STATE for s in states}},
            outputs=("log_probs", *finals),
            state_pairs=tuple(zip(finals, states)),
            int_ranges={"token": vocab},
        )

    def forward(self, token: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        embedded = self.embedding(token).unsqueeze(0)
        hx = (state[0], state[1]) if self.kind == "lstm" else state[0]
        output, final = self.rnn(embedded, hx)
        log_probs = torch.log_softmax(self.out(output[0]), dim=-1)
        return (log_probs, *final) if self.kind == "lstm" else (log_probs, final)

    def example_inputs(self) -> tuple[Tensor, ...]:
        states = 2 if self.kind == "lstm" else 1
        return (
            torch.tensor([1, 5]),
            *(torch.zeros(self.layers, 2, self.hidden) for _ in range(states)),
        )


class GRUEncoder(nn.Module):
    """2-layer bidirectional GRU encoder with a Linear head on every time step."""

    rnnx_io = ModelIO(inputs=("x",), dims={"x": TIME_MAJOR}, outputs=("encoded",))

    def __init__(self, input_size: int = 12, hidden: int = 16, out: int = 8) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, num_layers=2, bidirectional=True)
        self.head = nn.Linear(2 * hidden, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.gru(x)[0])

    def example_inputs(self) -> tuple[Tensor, ...]:
        return (torch.randn(5, 2, 12),)


class ProjectedLSTMStack(nn.Module):
    """LSTM with projection (hidden 128, proj_size 64, 2 layers) over 80 log-mel features,
    with explicit states, as streaming speech encoders use it."""

    rnnx_io = ModelIO(
        inputs=("features", "h0", "c0"),
        dims={"features": TIME_MAJOR, "h0": STACKED_STATE, "c0": STACKED_STATE},
        outputs=("encoded", "h_n", "c_n"),
        state_pairs=(("h_n", "h0"), ("c_n", "c0")),
    )

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(80, 128, num_layers=2, proj_size=64)

    def forward(self, features: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        encoded, (h_n, c_n) = self.lstm(features, (h0, c0))
        return encoded, h_n, c_n

    def example_inputs(self) -> tuple[Tensor, ...]:
        return torch.randn(5, 2, 80), torch.zeros(2, 2, 64), torch.zeros(2, 2, 128)


class PackedProsodyPredictor(nn.Module):
    """A TTS prosody predictor trained on ragged batches: phoneme features padded to the longest
    utterance, packed with their lengths through a bidirectional LSTM, and a per-phoneme
    Linear head (duration, pitch, energy)."""

    rnnx_io = ModelIO(
        inputs=("phonemes", "lengths"),
        dims={"phonemes": BATCH_MAJOR, "lengths": ("batch",)},
        outputs=("prosody",),
        lengths=("lengths",),
    )

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.head = nn.Linear(64, 3)

    def forward(self, phonemes: Tensor, lengths: Tensor) -> Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(phonemes, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)  # fmt: skip
        output, _ = self.lstm(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True,
                                                     total_length=phonemes.shape[1])  # fmt: skip
        return self.head(padded)

    def example_inputs(self) -> tuple[Tensor, ...]:
        return torch.randn(2, 5, 16), torch.tensor([3, 5])


ZOO: dict[str, Callable[[], nn.Module]] = {
    "elman_rnn": ElmanRNN,
    "char_rnn_cell": CharRNNCell,
    "char_rnn_sequence": CharRNNSequence,
    "bilstm_regressor": BiLSTMRegressor,
    "bilstm_regressor_mean": lambda: BiLSTMRegressor(average_directions=True),
    "lstm_classifier_1layer": lambda: LSTMClassifier(num_layers=1),
    "lstm_classifier_2layer": LSTMClassifier,
    "seq2seq_step_rnn": lambda: Seq2SeqStep("rnn"),
    "seq2seq_step_lstm": lambda: Seq2SeqStep("lstm"),
    "seq2seq_step_gru": lambda: Seq2SeqStep("gru"),
    "gru_encoder": GRUEncoder,
    "projected_lstm_stack": ProjectedLSTMStack,
    "packed_prosody_predictor": PackedProsodyPredictor,
}
BAD_EXAMPLES: dict[str, Callable[[], nn.Module]] = {"bad_bilstm_regressor": BadBiLSTMRegressor}
