"""The bench's models in PyTorch, by goldpan's registry name (`goldpan models`).

Each entry of MODELS: build(nn) -> nn.Module, the input shape C x H x W, the number of classes
and the expected parameter count (trainable parameters only; batch-norm running statistics are
buffers, not counted). The builders take `torch.nn` as an argument so that importing this file
does not import torch.

- lenet5: the classic LeNet5 (44,426 parameters).
- lenet-base, dtn: SHOT's digit networks (Liang et al. 2020, github.com/tim-learn/SHOT,
  digit/network.py), the full netC(netB(netF(x))):
    netF  LeNetBase (1x28x28 -> 800) or DTNBase (3x32x32 -> 4096);
    netB  feat_bootleneck type "bn": Linear(in, 256) -> BatchNorm1d(256) -> Dropout(0.5);
    netC  feat_classifier type "wn": weight-normalised Linear(256, 10), one g per output row.
  Initialised as SHOT does: netF convolutions and batch norms with PyTorch's defaults, the
  bottleneck and classifier Linear weights Xavier-normal with zero biases (before weight norm,
  so g starts at the rows' norms).
"""

from collections import namedtuple

Spec = namedtuple("Spec", "build input_shape classes params")


def lenet5(nn):
    # 28x28 -> conv5 24x24 -> pool 12x12 -> conv5 8x8 -> pool 4x4 -> 16*4*4 = 256
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(6, 16, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def lenet_base_f(nn):
    """SHOT's LeNetBase: 1x28x28 -> conv5 20x24x24 -> pool 12x12 -> conv5 50x8x8 -> pool 4x4
    -> 800."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(20, 50, 5),
        nn.Dropout2d(0.5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
    )


def dtn_base_f(nn):
    """SHOT's DTNBase: 3x32x32 -> 64x16x16 -> 128x8x8 -> 256x4x4 -> 4096 (5x5 convs, stride 2,
    padding 2)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 5, stride=2, padding=2),
        nn.BatchNorm2d(64),
        nn.Dropout2d(0.1),
        nn.ReLU(),
        nn.Conv2d(64, 128, 5, stride=2, padding=2),
        nn.BatchNorm2d(128),
        nn.Dropout2d(0.3),
        nn.ReLU(),
        nn.Conv2d(128, 256, 5, stride=2, padding=2),
        nn.BatchNorm2d(256),
        nn.Dropout2d(0.5),
        nn.ReLU(),
        nn.Flatten(),
    )


def _xavier_linear(nn, n_in, n_out):
    fc = nn.Linear(n_in, n_out)
    nn.init.xavier_normal_(fc.weight)
    nn.init.zeros_(fc.bias)
    return fc


def bottleneck_bn(nn, n_in, dim=256):
    """SHOT's feat_bootleneck, type "bn" (no ReLU in the digit networks)."""
    return nn.Sequential(
        _xavier_linear(nn, n_in, dim),
        nn.BatchNorm1d(dim, affine=True),
        nn.Dropout(0.5),
    )


def classifier_wn(nn, dim=256, classes=10):
    """SHOT's feat_classifier, type "wn": weight = g * v / ||v|| per output row (dim=0)."""
    fc = _xavier_linear(nn, dim, classes)
    param = getattr(nn.utils, "parametrizations", None)
    if param is not None and hasattr(param, "weight_norm"):  # torch >= 2.1
        return param.weight_norm(fc, name="weight", dim=0)
    return nn.utils.weight_norm(fc, name="weight", dim=0)  # older torch (Debian's 1.13)


def shot_digit(base_f, n_features):
    def build(nn):
        return nn.Sequential(base_f(nn), bottleneck_bn(nn, n_features), classifier_wn(nn))

    return build


MODELS = {
    "lenet5": Spec(lenet5, (1, 28, 28), 10, 44_426),
    # netF 520 + 25,050; netB 205,056 + 512; netC 2,560 (v) + 10 (g) + 10 (bias)
    "lenet-base": Spec(shot_digit(lenet_base_f, 800), (1, 28, 28), 10, 233_718),
    # netF 4,864 + 128 + 204,928 + 256 + 819,456 + 512; netB 1,048,832 + 512; netC 2,580
    "dtn": Spec(shot_digit(dtn_base_f, 4096), (3, 32, 32), 10, 2_082_068),
}
