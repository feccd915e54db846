"""RecBole's GRU4Rec: session-based recommendation, item ids through a GRU, the state at each
session's last item (gathered by its length) is the prediction.

Source: https://github.com/RUCAIBox/RecBole, recbole/model/sequential_recommender/gru4rec.py
(GRU4Rec) and recbole/model/abstract_recommender.py (SequentialRecommender.gather_indexes)
Commit: b616af6b6d4a8eaf6221477cc3d482048cc4f53e (gru4rec.py)
License: MIT (tests/corpus/LICENSES/recbole.txt)
Copyright (c) 2020 RUCAIBox
Changed: GRU4Rec's forward, __init__ (layers) and _init_weights as published; its base class
SequentialRecommender (which reads a RecBole config and dataset) is replaced by the stand-in
below holding n_items and the published gather_indexes; the loss, calculate_loss, predict and
full_sort_predict (training and scoring against all items) are dropped, with the BPRLoss
import; `config` is a plain dict. build(), example_inputs() and other_inputs() below are glue
for the rnnx corpus test.
"""
# ruff: noqa: UP008

import torch
from torch import nn
from torch.nn.init import xavier_normal_, xavier_uniform_


class SequentialRecommender(nn.Module):
    """Stand-in (rnnx corpus glue) for RecBole's base class: n_items and gather_indexes."""

    def __init__(self, config, dataset):
        super().__init__()
        self.n_items = config["n_items"]

    def gather_indexes(self, output, gather_index):
        """Gathers the vectors at the specific positions over a minibatch"""
        gather_index = gather_index.view(-1, 1, 1).expand(-1, -1, output.shape[-1])
        output_tensor = output.gather(dim=1, index=gather_index)
        return output_tensor.squeeze(1)


class GRU4Rec(SequentialRecommender):
    r"""GRU4Rec is a model that incorporate RNN for recommendation.

    Note:

        Regarding the innovation of this article,we can only achieve the data augmentation mentioned
        in the paper and directly output the embedding of the item,
        in order that the generation method we used is common to other sequential models.
    """

    def __init__(self, config, dataset):
        super(GRU4Rec, self).__init__(config, dataset)

        # load parameters info
        self.embedding_size = config["embedding_size"]
        self.hidden_size = config["hidden_size"]
        self.loss_type = config["loss_type"]
        self.num_layers = config["num_layers"]
        self.dropout_prob = config["dropout_prob"]

        # define layers and loss
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(self.dropout_prob)
        self.gru_layers = nn.GRU(
            input_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bias=False,
            batch_first=True,
        )
        self.dense = nn.Linear(self.hidden_size, self.embedding_size)

        # parameters initialization
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):
            xavier_normal_(module.weight)
        elif isinstance(module, nn.GRU):
            xavier_uniform_(module.weight_hh_l0)
            xavier_uniform_(module.weight_ih_l0)

    def forward(self, item_seq, item_seq_len):
        item_seq_emb = self.item_embedding(item_seq)
        item_seq_emb_dropout = self.emb_dropout(item_seq_emb)
        gru_output, _ = self.gru_layers(item_seq_emb_dropout)
        gru_output = self.dense(gru_output)
        # the embedding of the predicted item, shape of (batch_size, embedding_size)
        seq_output = self.gather_indexes(gru_output, item_seq_len - 1)
        return seq_output


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["lengths-gather"]
ITEMS = 50


def build() -> nn.Module:
    torch.manual_seed(0)
    config = {"n_items": ITEMS, "embedding_size": 8, "hidden_size": 12, "loss_type": "CE",
              "num_layers": 1, "dropout_prob": 0.3}  # fmt: skip
    return GRU4Rec(config, dataset=None).eval()


def _inputs(batch: int, steps: int) -> tuple:
    # RecBole's interaction: item_id_list (B, MAX_ITEM_LIST_LENGTH), padded with 0 after each
    # session's items, and item_length (B,)
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    items = torch.randint(1, ITEMS, (batch, steps), generator=generator)
    items = items * (torch.arange(steps)[None, :] < lengths[:, None])
    return items, lengths


def example_inputs() -> tuple:
    return _inputs(batch=2, steps=7)


def other_inputs() -> tuple:
    return _inputs(batch=3, steps=11)
