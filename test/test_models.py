"""The networks: exact parameter counts of the public references, any input size, outputs."""

import pytest

torch = pytest.importorskip("torch")  # the jazzy-py310 leg runs without PyTorch

from bisenet_ros.models import build_model

# Counts of CoinCheung/BiSeNet and mmsegmentation for 19 classes (Cityscapes).
PARAMETERS_19 = [
    ("bisenetv2", "coincheung", False, 3_358_627),
    ("bisenetv2", "coincheung", True, 5_231_487),
    ("bisenetv2", "mmseg", False, 3_358_883),
    ("bisenetv1", "coincheung", False, 13_275_539),
    ("bisenetv1", "coincheung", True, 13_425_721),
    ("bisenetv1", "mmseg", False, 13_275_539),
]


@pytest.mark.parametrize(("arch", "variant", "aux", "expected"), PARAMETERS_19)
def test_parameter_counts_match_the_references(arch, variant, aux, expected):
    model = build_model(arch, 19, aux_heads=aux, variant=variant)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("arch", ["bisenetv1", "bisenetv2"])
@pytest.mark.parametrize("size", [(720, 1280), (360, 480), (77, 101)])
def test_eval_logits_have_the_input_size(arch, size):
    model = build_model(arch, 11).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, *size))
    assert logits.shape == (1, 11, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("arch", "n_aux"), [("bisenetv1", 2), ("bisenetv2", 4)])
def test_training_mode_returns_aux_outputs_only_with_aux_heads(arch, n_aux):
    x = torch.randn(2, 3, 64, 96)
    with_aux = build_model(arch, 5, aux_heads=True).train()
    logits, aux = with_aux(x)
    assert logits.shape == (2, 5, 64, 96)
    assert [a.shape for a in aux] == [(2, 5, 64, 96)] * n_aux
    with_aux.eval()
    with torch.no_grad():
        assert with_aux(x).shape == (2, 5, 64, 96)  # booster heads are training-only
    plain = build_model(arch, 5).train()
    assert plain(x).shape == (2, 5, 64, 96)


def test_mmseg_variant_changes_the_computation_not_only_the_names():
    torch.manual_seed(0)
    ours = build_model("bisenetv2", 3).eval()
    mmseg = build_model("bisenetv2", 3, variant="mmseg").eval()
    state = {k: v for k, v in ours.state_dict().items()}
    missing, unexpected = mmseg.load_state_dict(state, strict=False)
    assert missing == ["bga.left1.2.bias", "bga.right2.2.bias"] and not unexpected
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(ours(x), mmseg(x))  # bilinear vs nearest aggregation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "bisenetv3", "num_classes": 3}, "unknown architecture"),
        ({"arch": "bisenetv2", "num_classes": 3, "variant": "paddle"}, "unknown variant"),
        ({"arch": "bisenetv2", "num_classes": 0}, "num_classes"),
    ],
)
def test_bad_build_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)
