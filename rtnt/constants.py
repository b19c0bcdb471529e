"""Defaults that several modules share, defined once (importing this module loads nothing else)."""

SAMPLE_RATE = 48000  # every capture, model and runtime figure is at 48 kHz
BENCH_BLOCK_SIZES = (1, 32, 64, 128, 256, 512, 1024)  # host block sizes the native benchmark times
