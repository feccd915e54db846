"""The CPU class a verification records: read from /proc/cpuinfo, capped by ONEDNN_MAX_CPU_ISA."""

from __future__ import annotations

import pytest

from rnnx.core.machine import CPU_FLAGS, MachineFacts, capped, classify, cpu_flags, this_machine

# (flags, class): the classes int8 and bf16 numerics differ between
CLASSES = [
    ({"sse4_2"}, "x86-64"),
    ({"avx2", "fma"}, "avx2"),
    ({"avx2", "fma", "avx_vnni"}, "avx2-vnni"),
    ({"avx2", "fma", "avx512f"}, "avx512"),
    ({"avx2", "fma", "avx512f", "avx512_vnni"}, "avx512-vnni"),
    ({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"}, "avx512-vnni-bf16"),
]


@pytest.mark.parametrize(("flags", "name"), CLASSES, ids=[c for _, c in CLASSES])
def test_a_machine_is_of_the_highest_class_whose_flags_it_has(flags, name) -> None:
    assert classify(flags, "x86_64") == name


def test_other_architectures_are_named_by_their_architecture() -> None:
    assert classify({"asimd"}, "aarch64") == "aarch64"


def test_onednn_cap_lowers_the_class_as_it_lowers_onednn_kernels(monkeypatch) -> None:
    high = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "sse4_2"}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert classify(capped(high), "x86_64") == "avx2"
    assert "sse4_2" in capped(high)  # flags rnnx does not classify by are left alone
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert classify(capped(high), "x86_64") == "avx512-vnni"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert capped(high) == high


def test_cpuinfo_is_read_and_this_machine_is_recorded(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Test CPU\nflags\t\t: fpu avx2 fma avx512f\n")
    flags, model = cpu_flags(cpuinfo)
    assert {"avx2", "fma", "avx512f"} <= flags and model == "Test CPU"
    assert cpu_flags(tmp_path / "missing") == (set(), None)
    facts = this_machine()
    assert set(facts.flags) <= set(CPU_FLAGS) and "onnxruntime" in facts.versions
    assert MachineFacts.from_dict(facts.to_dict()) == facts
    with pytest.raises(ValueError):
        MachineFacts.from_dict({"cpu_class": 3})
