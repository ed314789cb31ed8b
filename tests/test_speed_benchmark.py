def test_speed_benchmark_times_every_mode_and_both_ratios(tmp_path, capsys):
    """benchmarks/speed.py on the embedded model: one pair, one round at 128 px; the table has a median for
    each mode and both goal ratios, each a positive number, and the file written equals what was printed."""
    import re

    from benchmarks.speed import main

    out = tmp_path / "speed.md"
    main(["--size", "128", "--pairs", "1", "--rounds", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    for mode in ("tuning-free", "tuned", "direct"):
        assert re.search(rf"^\| {mode} \| \d+\.\d\d \|", printed, re.M)
    ratios = re.findall(r"\| (?:cascade / direct|tuned / tuning-free) .*? \| (\d+\.\d\d)x \|", printed)
    assert len(ratios) == 2 and all(float(value) > 0 for value in ratios)
    assert out.read_text().strip() == printed.strip()
