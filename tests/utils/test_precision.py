"""Mixed precision for training: bf16 autocast only where the CPU runs it natively."""


def test_amp_auto_picks_bf16_only_where_it_is_native(monkeypatch):
    from dfdnet.utils import precision

    monkeypatch.setattr(precision, 'cpu_flags', lambda: frozenset({'avx2', 'fma'}))
    assert precision.resolve_amp('auto', 'cpu') is None and precision.resolve_amp('bf16', 'cpu') == 'bf16'
    monkeypatch.setattr(precision, 'cpu_flags', lambda: frozenset({'avx2', 'amx_bf16'}))
    assert precision.resolve_amp('auto', 'cpu') == 'bf16'
    assert precision.resolve_amp(None, 'cpu') is None
