"""Defaults that several modules share, defined once (importing this module loads nothing else)."""

SAMPLE_RATE = 48000  # every capture, model and runtime figure is at 48 kHz
BENCH_BLOCK_SIZES = (1, 32, 64, 128, 256, 512, 1024)  # host block sizes the native benchmark times
# NAM's metadata enums (GearType, ToneType of NAM's trainer): the values `capture.gear.type` / `tone_type` may take.
GEAR_TYPES = ("amp", "pedal", "amp_cab", "amp_pedal_cab", "preamp", "studio")
TONE_TYPES = ("clean", "overdrive", "crunch", "hi_gain", "fuzz")
