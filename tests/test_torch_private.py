"""The private torch APIs behind geomopt.optim.torch_private: present, and a clear error when torch changes them."""

import pytest

from geomopt.optim import torch_private


def test_every_private_api_resolves_on_this_torch():
    for name in torch_private._PRIVATE:
        assert torch_private._resolve(name) is not None


def test_renamed_or_changed_api_fails_with_one_clear_line(monkeypatch):
    monkeypatch.setitem(torch_private._PRIVATE, "gone", ("torch.optim._muon", "no_such_function", ()))
    with pytest.raises(torch_private.TorchPrivateAPIError, match=r"no private API torch\.optim\._muon\.no_such_function.*pin torch"):
        torch_private._resolve("gone")
    monkeypatch.setitem(torch_private._PRIVATE, "changed", ("torch.optim._muon", "muon", ("a_new_argument",)))
    with pytest.raises(torch_private.TorchPrivateAPIError, match=r"changed torch\.optim\._muon\.muon.*a_new_argument"):
        torch_private._resolve("changed")
