"""$TUNER_TIMELINE: one JSON line per stage, from any process; nothing at all when unset."""

from tuner import timeline


def test_marks_are_appended_when_asked_for(tmp_path, monkeypatch):
    path = tmp_path / "timeline.jsonl"
    monkeypatch.setenv(timeline.ENV, str(path))
    timeline.mark("ray_ready")
    timeline.mark("epoch_end", trial_id="a", epoch=1)
    events = timeline.read(str(path))
    assert [e["event"] for e in events] == ["ray_ready", "epoch_end"]
    assert events[1]["trial_id"] == "a" and events[1]["epoch"] == 1 and events[0]["t"] <= events[1]["t"]


def test_nothing_is_written_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv(timeline.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    timeline.mark("ray_ready")
    assert list(tmp_path.iterdir()) == []
