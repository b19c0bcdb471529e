"""Gray-box models (`arch: graybox`): chains of differentiable DSP blocks with interpretable parameters.

`rbj` (biquad coefficients, numpy or TensorFlow), `dsp` (frequency sampling, FFT convolution), `blocks` (the
Keras layers), `build` (a preset's chain). Importing the package imports neither Keras nor TensorFlow.
"""
