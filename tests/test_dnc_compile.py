"""DNC(..., compile=True): the compiled recurrent step equals the eager one, and falls back where it cannot compile.

compile=True compiles the steps that the fused CPU step does not take; here fused=False makes every step one.
"""

import copy
import pickle
import warnings

import pytest
import torch

from dreamlab.dnc import DNC

SIZES = dict(input_size=5, output_size=3, hidden_size=16, memory_slots=8, word_size=4, read_heads=2, fused=False)


def outputs_and_grads(dnc, x):
    dnc.zero_grad(set_to_none=True)
    y, state = dnc(x)
    (y.square().sum() + state.link.sum()).backward()
    return y.detach(), state.memory.detach(), {name: p.grad.clone() for name, p in dnc.named_parameters()}


@pytest.mark.slow  # compiling the step (forward and backward) takes 30-90 s on a CPU
def test_compiled_step_matches_eager_outputs_and_gradients():
    torch.manual_seed(0)
    eager = DNC(**SIZES)
    compiled = DNC(**SIZES, compile=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(3, 6, SIZES["input_size"])
    y, memory, grads = outputs_and_grads(eager, x)
    for _ in range(2):  # the second call reuses the compiled graphs
        y_c, memory_c, grads_c = outputs_and_grads(compiled, x)
        torch.testing.assert_close(y_c, y, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(memory_c, memory, atol=1e-5, rtol=1e-4)
        for name, grad in grads.items():
            torch.testing.assert_close(grads_c[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_failed_compilation_warns_once_and_runs_eagerly(monkeypatch):
    def broken_compile(function, **kwargs):
        def compiled(*args):
            raise RuntimeError("no C++ compiler found\nsecond line")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    torch.manual_seed(0)
    eager = DNC(**SIZES)
    fallback = DNC(**SIZES, compile=True)
    fallback.load_state_dict(eager.state_dict())
    x = torch.randn(2, 4, SIZES["input_size"])
    with pytest.warns(RuntimeWarning, match="torch.compile is unavailable here .*no C\\+\\+ compiler found"):
        y_fallback, _ = fallback(x)
    torch.testing.assert_close(y_fallback, eager(x)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # later calls run eagerly without warning again
        fallback(x)


def test_compile_unsupported_at_creation_falls_back(monkeypatch):
    def unsupported(function, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    dnc = DNC(**SIZES, compile=True)
    with pytest.warns(RuntimeWarning, match="not supported on this Python"):
        y, _ = dnc(torch.randn(2, 3, SIZES["input_size"]))
    assert y.shape == (2, 3, 3)


def test_a_compiled_dnc_copies_and_pickles_without_its_compiled_step(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda function, **kwargs: function)
    dnc = DNC(**SIZES, compile=True)
    dnc(torch.randn(2, 3, SIZES["input_size"]))
    assert dnc._compiled_advance is not None
    for clone in (copy.deepcopy(dnc), pickle.loads(pickle.dumps(dnc))):
        assert clone.compile_steps and clone._compiled_advance is None
        assert callable(clone.compile)  # nn.Module.compile is not hidden by the option


def test_fused_cpu_steps_are_not_compiled(monkeypatch):
    def unusable(function, **kwargs):
        raise AssertionError("compiled although the fused step applies")

    monkeypatch.setattr(torch, "compile", lambda function, **kwargs: unusable)
    torch.manual_seed(0)
    sizes = dict(SIZES, fused=True)
    eager, compiled = DNC(**sizes), DNC(**sizes, compile=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 3, SIZES["input_size"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(compiled(x)[0], eager(x)[0], rtol=0, atol=0)


def test_the_recurrent_step_traces_into_one_graph_with_the_link_kernel_inside():
    """The numba link step is a torch operator, not a graph break: Dynamo captures the whole step."""
    torch.manual_seed(0)
    cell = DNC(**SIZES).cell
    state = cell.initial_state(2)
    projected = cell.controller.project_input(torch.randn(2, SIZES["input_size"]))
    explanation = torch._dynamo.explain(cell.advance_with_modules)(projected, state, cell.step_weights())
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    operators = {str(node.target) for graph in explanation.graphs for node in graph.graph.nodes}
    assert "dreamlab.dnc_link_step.default" in operators
