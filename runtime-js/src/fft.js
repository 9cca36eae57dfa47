// The Python runtime's resampler (lexiedge_runtime.inputs.resample_fft), in float64 like numpy's:
// the real FFT of the clip, its spectrum cut at the new Nyquist (downsampling) or zero-extended
// (upsampling), the inverse real FFT of the new length, scaled by new/old length and clipped to [-1, 1].
// Lengths are arbitrary (a 3.2 s clip at 48 kHz is 153600 samples), so the DFT of any length is
// Bluestein's chirp-z transform over a power-of-two radix-2 FFT.

/** (N,) float samples at ``rate`` -> Float32Array (round(N * target / rate)) at ``target``, band-limited. */
export function resample(samples, rate, target) {
  const length = samples.length;
  const newLength = Math.max(1, pyRoundHalfEven((length * target) / rate));
  const re = Float64Array.from(samples);
  const im = new Float64Array(length);
  dft(re, im, false); // the full spectrum; rfft is its first N//2 + 1 bins
  const bins = Math.floor(newLength / 2) + 1;
  const kept = Math.min(bins, Math.floor(length / 2) + 1);
  // numpy's irfft(n=newLength) reads bins 0..newLength//2, ignoring the imaginary part of bin 0 and,
  // for an even length, of the last one; the other half is the conjugate mirror.
  const outRe = new Float64Array(newLength);
  const outIm = new Float64Array(newLength);
  for (let k = 0; k < bins; k++) {
    const r = k < kept ? re[k] : 0;
    let i = k < kept ? im[k] : 0;
    if (k === 0 || (newLength % 2 === 0 && k === newLength / 2)) i = 0;
    outRe[k] = r;
    outIm[k] = i;
    if (k > 0 && newLength - k !== k && newLength - k >= bins) {
      outRe[newLength - k] = r;
      outIm[newLength - k] = -i;
    }
  }
  dft(outRe, outIm, true);
  const scale = 1 / length; // irfft's 1/newLength times numpy's (newLength / length)
  const out = new Float32Array(newLength);
  for (let n = 0; n < newLength; n++) out[n] = Math.min(1, Math.max(-1, outRe[n] * scale));
  return out;
}

function pyRoundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** In-place DFT of any length (unnormalised; ``inverse`` flips the sign of the exponent). */
export function dft(re, im, inverse) {
  const n = re.length;
  if (n <= 1) return;
  if ((n & (n - 1)) === 0) {
    radix2(re, im, inverse);
    return;
  }
  bluestein(re, im, inverse);
}

function bluestein(re, im, inverse) {
  const n = re.length;
  let m = 1;
  while (m < 2 * n - 1) m <<= 1;
  const sign = inverse ? 1 : -1;
  // chirp w[k] = exp(sign * i * pi * k^2 / n); k^2 taken modulo 2n keeps the angle exact
  const cosT = new Float64Array(n);
  const sinT = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const angle = (Math.PI * ((k * k) % (2 * n))) / n;
    cosT[k] = Math.cos(angle);
    sinT[k] = sign * Math.sin(angle);
  }
  const aRe = new Float64Array(m);
  const aIm = new Float64Array(m);
  for (let k = 0; k < n; k++) { // a = x * conj(w)
    aRe[k] = re[k] * cosT[k] + im[k] * sinT[k];
    aIm[k] = im[k] * cosT[k] - re[k] * sinT[k];
  }
  const bRe = new Float64Array(m);
  const bIm = new Float64Array(m);
  bRe[0] = cosT[0];
  bIm[0] = sinT[0];
  for (let k = 1; k < n; k++) {
    bRe[k] = bRe[m - k] = cosT[k];
    bIm[k] = bIm[m - k] = sinT[k];
  }
  radix2(aRe, aIm, false);
  radix2(bRe, bIm, false);
  for (let k = 0; k < m; k++) {
    const r = aRe[k] * bRe[k] - aIm[k] * bIm[k];
    aIm[k] = aRe[k] * bIm[k] + aIm[k] * bRe[k];
    aRe[k] = r;
  }
  radix2(aRe, aIm, true);
  for (let k = 0; k < n; k++) { // X = conj(w) * (a conv b) / m
    const r = aRe[k] / m;
    const i = aIm[k] / m;
    re[k] = r * cosT[k] + i * sinT[k];
    im[k] = i * cosT[k] - r * sinT[k];
  }
}

function radix2(re, im, inverse) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const angle = ((inverse ? 2 : -2) * Math.PI) / size;
    const half = size >> 1;
    const wRe = new Float64Array(half);
    const wIm = new Float64Array(half);
    for (let k = 0; k < half; k++) {
      wRe[k] = Math.cos(angle * k);
      wIm[k] = Math.sin(angle * k);
    }
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const a = start + k;
        const b = a + half;
        const tRe = re[b] * wRe[k] - im[b] * wIm[k];
        const tIm = re[b] * wIm[k] + im[b] * wRe[k];
        re[b] = re[a] - tRe;
        im[b] = im[a] - tIm;
        re[a] += tRe;
        im[a] += tIm;
      }
    }
  }
}
