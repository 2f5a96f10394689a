"""Every registered optimizer: builds on a small model through the registry, and ``step(closure)``
re-evaluates the closure with gradients enabled and returns its loss (torch.optim's convention)."""

import pytest
import torch

from geomopt.optim import OPTIMIZERS, build_optimizers, get_spec


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8)
        self.body = torch.nn.Linear(8, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.norm(torch.relu(self.body(self.emb(x)))))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_returns_closure_loss(name):
    torch.manual_seed(0)
    model = _Tiny()
    opts = build_optimizers(name, model)
    x = torch.randint(0, 10, (16,))

    def closure():
        for o in opts:
            o.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), x)
        loss.backward()
        return loss

    for _ in range(3):  # past first-step conventions (SOAP / DeVA-S∞ build their basis first)
        losses = [o.step(closure) for o in opts]
    assert all(isinstance(v, torch.Tensor) and torch.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of: adamw"):
        get_spec("adamw2")


def _signature_is_ours(cls) -> bool:
    """True when the class's own __init__ names its scale hyper-parameters (Muon/ClipMuon forward
    **hyper to torch's signature; torch.optim classes are torch's)."""
    import inspect

    return cls.__module__.startswith("geomopt") and "lr" in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_registry_defaults_and_class_defaults_cannot_disagree(name):
    from geomopt.optim.registry import ADAMW_HOUSE, SCALE_KEYS, class_defaults

    spec = get_spec(name)
    cls = spec.cls()
    own = class_defaults(cls)
    for key, value in spec.overrides.items():
        assert key in own, f"{name}: override {key!r} is not a hyper-parameter of {cls.__name__}"
        assert own[key] != value, f"{name}: override {key}={value!r} restates {cls.__name__}'s default"
    if _signature_is_ours(cls):
        scale = {k: v for k, v in spec.overrides.items() if k in SCALE_KEYS}
        if name == "shrink_adamw":  # paper 1's pair: AdamW's house settings, so only ψ differs
            assert scale == ADAMW_HOUSE == get_spec("adamw").overrides
        else:
            assert not scale, f"{name}: set {sorted(scale)} in {cls.__name__}'s signature, not in the registry"
    # What the registry reports is what a build with no hyper-parameters gives.
    built = build_optimizers(name, _Tiny())[0]
    assert type(built) is cls
    group = built.param_groups[0]  # the decayed group (the second one turns weight decay off)
    for key, value in spec.defaults.items():
        if value is not None:  # None: decided at build time from the parameters (foreach, fused)
            assert group[key] == value, f"{name}: built {key}={group[key]!r}, registry says {value!r}"


def test_deva_sinf_has_one_set_of_defaults():
    from geomopt.optim.deva import DevaSinf

    w = torch.zeros(3, 3, requires_grad=True)
    cls_defaults = DevaSinf([w]).defaults
    assert get_spec("deva_sinf").defaults == cls_defaults
    assert (cls_defaults["lr"], cls_defaults["weight_decay"]) == (3e-3, 0.01)  # the public code's


def test_shrink_classes_leave_the_other_classes_to_plain_adamw():
    """ShrinkAdamW restricted to embeddings + head: the hidden matrices and gains follow torch's AdamW
    bit for bit (same betas/eps/wd, torch's fused kernel), on heavy-tailed gradient streams."""
    hp = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, psi="smooth", t=2.0, warmup_steps=2)
    torch.manual_seed(0)
    model, ref_model = _Tiny(), _Tiny()
    ref_model.load_state_dict(model.state_dict())
    (opt,) = build_optimizers("shrink_adamw", model, {**hp, "shrink_classes": ["embeddings", "head"]})
    assert [(len(g["params"]), g["psi"], g["weight_decay"]) for g in opt.param_groups] == [
        (2, "smooth", 0.1), (1, None, 0.1), (4, None, 0.0)]  # emb + head weights | body weight | gains, biases
    decay = [ref_model.body.weight, ref_model.emb.weight, ref_model.head.weight]
    rest = [p for p in ref_model.parameters() if all(p is not q for q in decay)]
    ref = torch.optim.AdamW([{"params": decay}, {"params": rest, "weight_decay": 0.0}],
                            **{k: hp[k] for k in ("lr", "betas", "eps", "weight_decay")}, fused=True)
    gen = torch.Generator().manual_seed(1)
    for _ in range(12):
        for p, q in zip(model.parameters(), ref_model.parameters()):
            g = torch.randn(p.shape, generator=gen) / torch.rand(p.shape, generator=gen).clamp_min(1e-3)  # heavy tails
            p.grad, q.grad = g.clone(), g.clone()
        opt.step(), ref.step()
    for name, p in model.named_parameters():
        q = dict(ref_model.named_parameters())[name]
        assert torch.equal(p, q) == (name not in ("emb.weight", "head.weight")), name  # the shrink acts only there


@pytest.mark.parametrize("name, classes, words", [
    ("shrink_adamw", ["embedding"], "did you mean 'embeddings'"),
    ("shrink_adamw", [], "non-empty list"),
    ("adamw", ["head"], "takes no shrink_classes"),
    ("clip_muon", ["hidden"], "takes no shrink_classes"),
])
def test_bad_shrink_classes_are_one_line_errors(name, classes, words):
    with pytest.raises(ValueError, match=words):
        build_optimizers(name, _Tiny(), {"shrink_classes": classes})


def test_a_bad_shrink_class_in_a_config_exits_2_with_one_line(tmp_path, capsys, repo_root):
    from geomopt.train import cli

    smoke = str(repo_root / "experiments" / "presets" / "cpu" / "smoke.toml")
    rc = cli.main([smoke, f"out={tmp_path}/m.jsonl", f"checkpoint_dir={tmp_path}/c", "optimizer=shrink_adamw",
                   'optim.shrink_classes=["embeddings", "heads"]'])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "'heads' unknown" in err, err
    assert not any(tmp_path.rglob("*"))
