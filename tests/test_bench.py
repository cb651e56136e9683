from cnn_lab import bench


def test_conv_benchmark_row_and_write_order(tmp_path, monkeypatch):
    rows = bench.bench_conv_update(None, quick=True)
    assert rows[0][0].startswith("Convolution page update") and rows[0][1].endswith("ms median")
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nA summary that stays on top.\n\n### old\n\n| old table |\n")
    bench.write("### new\n\n| new table |\n", path)
    text = path.read_text()
    assert text.index("A summary") < text.index("### new") < text.index("### old")
