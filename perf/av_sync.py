#!/usr/bin/env python3
"""A/V sync of a recording of perf/rtmp-sync's marker stream.

The publisher flashes the picture white and beeps at every whole second of its own clock, so
each flash and its beep were captured at the same instant. For a recording this finds every flash onset in the video (mean luma) and every beep onset
in the audio (first loud sample after silence), pairs each flash with the nearest beep, and
prints one JSON line: the onset counts, the audio-minus-video offsets (ms), how they moved
from the first minute to the last (drift between the tracks), and the mean time between
flashes on the recording's clock (media time, or arrival time for a recording made with
ffmpeg's `-use_wallclock_as_timestamps 1`).
Usage: perf/av_sync.py RECORDING (MPEG-TS or Matroska)
"""
import json
import struct
import subprocess
import sys

LUMA_ON = 100  # the flash is white on black: mean luma jumps from 16 to 235
LOUD = 3000  # the beep is 0.8 full scale; AAC noise in the silence stays far below
RATE = 48000


def probe(args):
    return subprocess.run(["ffprobe", "-v", "error", *args], capture_output=True, text=True,
                          check=True).stdout


def flashes(path):
    out = probe(["-f", "lavfi", f"movie={path},signalstats", "-show_entries",
                 "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "json"])
    onsets, lit = [], False
    for frame in json.loads(out)["frames"]:
        now_lit = float(frame["tags"]["lavfi.signalstats.YAVG"]) > LUMA_ON
        if now_lit and not lit:
            onsets.append(float(frame["pts_time"]))
        lit = now_lit
    return onsets


def beeps(path):
    start = json.loads(probe(["-select_streams", "a:0", "-show_entries", "stream=start_time",
                              "-of", "json", path]))["streams"][0]["start_time"]
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vn", "-ac", "1", "-ar",
                          str(RATE), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    onsets, last_loud = [], -RATE
    for i, v in enumerate(samples):
        if abs(v) > LOUD:
            # A beep starts after at least half a second of silence.
            if i - last_loud > RATE // 2:
                onsets.append(float(start) + i / RATE)
            last_loud = i
    return onsets


def main():
    path = sys.argv[1]
    video, audio = flashes(path), beeps(path)
    if not video or not audio:
        print(json.dumps({"file": path, "flashes": len(video), "beeps": len(audio),
                          "error": "no markers found"}))
        sys.exit(1)
    steady = video[5:] if len(video) > 10 else video
    offsets = [(min(audio, key=lambda a: abs(a - t)) - t) * 1000 for t in video]
    head, tail = offsets[:60], offsets[-60:]
    print(json.dumps({
        "file": path,
        "flashes": len(video),
        "beeps": len(audio),
        "first_flash_s": round(video[0], 3),
        "last_flash_s": round(video[-1], 3),
        # Seconds between flashes on this recording's clock (1 on the publisher's), past the
        # first few: a new reader's first second or two come in a burst from the GOP cache.
        "flash_interval_s": round((video[-1] - steady[0]) / max(len(steady) - 1, 1), 6),
        "offset_ms_min": round(min(offsets), 1),
        "offset_ms_max": round(max(offsets), 1),
        "drift_ms": round(sum(tail) / len(tail) - sum(head) / len(head), 1),
    }))


if __name__ == "__main__":
    main()
