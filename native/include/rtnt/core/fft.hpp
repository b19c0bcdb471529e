// A small radix-2 real FFT (float32, power-of-two sizes), for the partitioned FIR convolution.
#pragma once

#include <cmath>
#include <complex>
#include <stdexcept>
#include <vector>

#include "aligned.hpp"

namespace rtnt {

/// Real FFT of size N = 2M: the real input is read as M complex samples z[n] = x[2n] + i x[2n+1], run
/// through an iterative radix-2 decimation-in-time complex FFT of size M, and split into the N/2 + 1 bins
/// of the real signal (the "two for the price of one" packing; e.g. Press et al., Numerical Recipes, 12.3).
/// Spectra are split arrays re[0..M], im[0..M]. Tables are built by the constructor; forward() and
/// inverse() allocate nothing. inverse() returns N times the signal (no 1/N scaling).
class RealFft {
public:
    explicit RealFft(int n) : n_(n), m_(n / 2) {
        if (n < 4 || (n & (n - 1)) != 0) throw std::invalid_argument("RealFft size must be a power of two >= 4");
        const double pi = 3.14159265358979323846;
        bitrev_.resize(m_);
        int bits = 0;
        while ((1 << bits) < m_) ++bits;
        for (int i = 0; i < m_; ++i) {
            int r = 0;
            for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
            bitrev_[i] = r;
        }
        tw_re_.resize(m_ / 2 + 1);
        tw_im_.resize(m_ / 2 + 1);
        for (int k = 0; k <= m_ / 2; ++k) {  // e^{-2 pi i k / M}
            tw_re_[k] = static_cast<float>(std::cos(2.0 * pi * k / m_));
            tw_im_[k] = static_cast<float>(-std::sin(2.0 * pi * k / m_));
        }
        split_re_.resize(m_ + 1);
        split_im_.resize(m_ + 1);
        for (int k = 0; k <= m_; ++k) {  // e^{-2 pi i k / N}
            split_re_[k] = static_cast<float>(std::cos(2.0 * pi * k / n_));
            split_im_[k] = static_cast<float>(-std::sin(2.0 * pi * k / n_));
        }
        zr_.resize(m_);
        zi_.resize(m_);
    }

    int size() const noexcept { return n_; }
    int bins() const noexcept { return m_ + 1; }

    /// x: n real samples -> re, im: n/2 + 1 bins each.
    void forward(const float* x, float* re, float* im) noexcept {
        for (int i = 0; i < m_; ++i) {
            zr_[bitrev_[i]] = x[2 * i];
            zi_[bitrev_[i]] = x[2 * i + 1];
        }
        butterflies(false);
        for (int k = 0; k <= m_; ++k) {
            const int a = k % m_, b = (m_ - k) % m_;
            // E = (Z[k] + conj Z[M-k]) / 2, O = (Z[k] - conj Z[M-k]) / 2i, X[k] = E + W^k O.
            const float er = 0.5f * (zr_[a] + zr_[b]), ei = 0.5f * (zi_[a] - zi_[b]);
            const float orr = 0.5f * (zi_[a] + zi_[b]), oi = -0.5f * (zr_[a] - zr_[b]);
            re[k] = er + split_re_[k] * orr - split_im_[k] * oi;
            im[k] = ei + split_re_[k] * oi + split_im_[k] * orr;
        }
    }

    /// re, im: n/2 + 1 bins of a real signal -> x: n samples, scaled by n.
    void inverse(const float* re, const float* im, float* x) noexcept {
        for (int k = 0; k < m_; ++k) {
            // E = (X[k] + conj X[M-k]) / 2, O = (X[k] - conj X[M-k]) / (2 W^k), Z = E + i O.
            const float er = 0.5f * (re[k] + re[m_ - k]), ei = 0.5f * (im[k] - im[m_ - k]);
            const float dr = 0.5f * (re[k] - re[m_ - k]), di = 0.5f * (im[k] + im[m_ - k]);
            const float orr = dr * split_re_[k] + di * split_im_[k];  // divide by W^k: multiply by conj(W^k)
            const float oi = di * split_re_[k] - dr * split_im_[k];
            zr_[bitrev_[k]] = er - oi;
            zi_[bitrev_[k]] = ei + orr;
        }
        butterflies(true);
        for (int i = 0; i < m_; ++i) {  // the complex inverse of size M scales by M; times 2 gives N
            x[2 * i] = 2.0f * zr_[i];
            x[2 * i + 1] = 2.0f * zi_[i];
        }
    }

private:
    /// In-place iterative radix-2 butterflies on bit-reversed zr_, zi_ (conjugate twiddles if inverse).
    void butterflies(bool inverse) noexcept {
        const float sign = inverse ? -1.0f : 1.0f;
        for (int len = 2; len <= m_; len <<= 1) {
            const int half = len / 2, step = m_ / len;
            for (int s = 0; s < m_; s += len) {
                for (int j = 0; j < half; ++j) {
                    const float wr = tw_re_[j * step], wi = sign * tw_im_[j * step];
                    const int p = s + j, q = p + half;
                    const float tr = wr * zr_[q] - wi * zi_[q], ti = wr * zi_[q] + wi * zr_[q];
                    zr_[q] = zr_[p] - tr;
                    zi_[q] = zi_[p] - ti;
                    zr_[p] += tr;
                    zi_[p] += ti;
                }
            }
        }
    }

    int n_, m_;
    std::vector<int> bitrev_;
    FloatVec tw_re_, tw_im_, split_re_, split_im_, zr_, zi_;
};

}  // namespace rtnt
