"""Reading a clip over time: a held expression names the clip, a flicker does not."""
import numpy as np

from affect_sdk.vision.temporal import SustainedReading, sustained_expression, window_frames

FPS = 30.0


def _clip(neutral_frames: int, expression: int, held_frames: int, after: int = 30) -> tuple[np.ndarray, np.ndarray]:
    probs = np.full((neutral_frames + held_frames + after, 8), 0.02)
    probs[:, 0] = 0.86
    probs[neutral_frames:neutral_frames + held_frames] = 0.05
    probs[neutral_frames:neutral_frames + held_frames, expression] = 0.65
    return probs, np.arange(len(probs)) / FPS


def test_an_expression_held_for_half_a_second_names_the_clip_although_neutral_frames_dominate():
    probs, times = _clip(60, expression=3, held_frames=18)  # 0.6 s of surprise in a 3.6 s clip
    assert probs.mean(0).argmax() == 0  # a frame mean says neutral
    label, pooled, (start, end) = sustained_expression(probs, times)
    assert label == 3 and pooled[3] > pooled[0]
    assert 60 / FPS - 0.1 <= start and end <= 78 / FPS + 0.1


def test_a_flicker_shorter_than_the_window_does_not_name_the_clip():
    probs, times = _clip(60, expression=6, held_frames=5)  # 0.17 s of fear
    label, pooled, _ = sustained_expression(probs, times)
    assert label == 0 and np.isclose(pooled.sum(), 1)


def test_the_strongest_of_two_held_expressions_wins_and_short_clips_use_the_mean():
    probs, times = _clip(30, expression=1, held_frames=20)
    probs[5:25, 0], probs[5:25, 4] = 0.1, 0.5  # a weaker held anger earlier
    assert sustained_expression(probs, times)[0] == 1
    short = probs[:2]
    assert sustained_expression(short, times[:2])[0] == int(short.mean(0).argmax())
    assert window_frames(times, 0.5) == 15 and window_frames(times[:1], 0.5) == 3


def test_streaming_reading_pushed_frame_by_frame_equals_the_offline_reading():
    probs, times = _clip(40, expression=2, held_frames=25)
    probs = probs + np.random.default_rng(0).uniform(0, 0.05, probs.shape)
    offline = sustained_expression(probs, times)
    reading = SustainedReading(window_frames(times, 0.5))
    for t, p in zip(times, probs):
        reading.push(t, p)
    streamed = reading.result()
    assert streamed[0] == offline[0] == 2 and np.allclose(streamed[1], offline[1]) and streamed[2] == offline[2]
    assert len(reading._recent) == reading.window  # bounded state, whatever the stream's length
