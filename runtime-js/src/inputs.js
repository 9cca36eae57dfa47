// Checking and preparing a clip's inputs: the checks, limits and messages of the Python runtime's
// lexiedge_runtime/inputs.py (one clip per call), with every number read from the manifest's spec.
// Files go through prepareAudio, the audio half of lexiedge_runtime/media/decode.py's decode_file.

import { InputDtypeError, InputShapeError, InputValueError } from './errors.js';
import { resample } from './fft.js';
import { pyFixed, pyFloat, pyG, pyRepr, pyRound } from './format.js';

const DTYPES = new Map([
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int8Array, 'int8'], [Uint8Array, 'uint8'],
  [Uint8ClampedArray, 'uint8'], [Int16Array, 'int16'], [Uint16Array, 'uint16'], [Int32Array, 'int32'],
  [Uint32Array, 'uint32'], [BigInt64Array, 'int64'], [BigUint64Array, 'uint64'],
]);
if (typeof globalThis.Float16Array === 'function') DTYPES.set(globalThis.Float16Array, 'float16');

/** numpy's name for a typed array's element type ("float32", "int16"), or null for anything else. */
export function dtypeOf(value) {
  for (const [type, name] of DTYPES) if (value instanceof type) return name;
  return null;
}

const tuple = (shape) => `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;

/** A 1-D array of numbers as (dtype, values) or an InputDtypeError/InputShapeError naming ``name``. */
function asArray(name, value) {
  const dtype = dtypeOf(value);
  if (dtype) return { dtype, values: value };
  if (Array.isArray(value)) {
    if (value.some((x) => Array.isArray(x) || ArrayBuffer.isView(x))) {
      const shape = [value.length, value[0]?.length ?? 0];
      throw new InputShapeError(`${name} has shape ${tuple(shape)}; this runtime classifies one clip per call: ` +
        'pass (samples,) mono audio');
    }
    if (!value.every((x) => typeof x === 'number')) {
      throw new InputDtypeError(`${name} holds values that are not numbers; pass a Float32Array`);
    }
    return { dtype: 'float64', values: value };
  }
  const what = value === null ? 'null' : (value?.constructor?.name ?? typeof value);
  throw new InputDtypeError(`${name} is not an array (${what}); pass a Float32Array`);
}

/** The waveform's checks (inputs.py's _waveform), then resampling to the model's rate. */
export function checkWaveform(spec, waveform, sampleRate) {
  const { dtype, values } = asArray('waveform', waveform);
  if (!dtype.startsWith('float')) {
    const hint = /^u?int/.test(dtype) ? ' (scale int16 PCM by 1/32768)' : '';
    throw new InputDtypeError(`waveform has dtype ${dtype}; expected float32 mono samples in [-1, 1]${hint}`);
  }
  const count = values.length;
  if (count === 0) throw new InputValueError('waveform is empty (0 samples); pass at least one clip of mono audio');
  if (typeof sampleRate !== 'number' || !Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new InputValueError(`sample_rate must be a positive whole number of Hz, got ${pyRepr(sampleRate)}`);
  }
  const { minSeconds, maxSeconds, range } = spec.waveform;
  const shortest = pyRound(minSeconds * sampleRate);
  if (count < shortest) {
    throw new InputShapeError(`waveform clips have ${count} samples; expected at least ${shortest} ` +
      `(${pyFloat(minSeconds)} s at ${sampleRate} Hz)`);
  }
  const seconds = count / sampleRate;
  if (seconds > maxSeconds) {
    throw new InputShapeError(`waveform clips are ${pyFixed(seconds, 1)} s long; this model takes at most ` +
      `${pyG(maxSeconds)} s (preprocessing.max_input_seconds, ${spec.maxInputFactor}x its training clips): ` +
      'split long audio into windows and classify each');
  }
  const samples = dtype === 'float32' ? values : Float32Array.from(values);
  let peak = 0;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i];
    if (!Number.isFinite(x)) {
      throw new InputValueError('waveform contains NaN or infinite values in the clip; expected finite numbers');
    }
    const magnitude = Math.abs(x);
    if (magnitude > peak) peak = magnitude;
  }
  const high = Math.max(-range[0], range[1]);
  if (peak > high + spec.rangeSlack) {
    throw new InputValueError(`waveform values must lie in [${pyG(range[0])}, ${pyG(range[1])}] (float PCM); ` +
      `got max |x| = ${pyG(peak, 4)} (scale int16 PCM by 1/32768)`);
  }
  return sampleRate === spec.waveform.sampleRate ? samples : resample(samples, sampleRate, spec.waveform.sampleRate);
}

/**
 * Frames' checks (inputs.py's _frames): ``{data, shape: [T, C, H, W]}`` with uint8 data (scaled by the
 * manifest's uint8_scale, as training did) or float data in [0, 1]. Returns float32 data.
 */
export function checkFrames(spec, frames) {
  const { channels, imageSize: size, maxFrames, range, uint8Scale } = spec.frames;
  const expected = `(frames, ${channels}, ${size}, ${size}) for one clip or (batch, frames, ${channels}, ${size}, ${size})`;
  const data = frames?.data;
  const dtype = dtypeOf(data);
  if (dtype === null) throw new InputDtypeError('frames is not {data: typed array, shape: [T, C, H, W]}; pass uint8 or float32 RGB');
  if (dtype !== 'uint8' && !dtype.startsWith('float')) {
    throw new InputDtypeError(`frames have dtype ${dtype}; expected float32 RGB in [0, 1] or uint8 RGB`);
  }
  let shape = Array.isArray(frames.shape) ? frames.shape : [data.length];
  if (shape.length === 5 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length !== 4) throw new InputShapeError(`frames have shape ${tuple(shape)}; expected ${expected}`);
  const [count, gotChannels, height, width] = shape;
  if (shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new InputShapeError(`frames hold ${data.length} values but shape ${tuple(shape)} needs ${shape.reduce((a, b) => a * b, 1)}`);
  }
  if (count === 0) throw new InputValueError(`frames hold 0 frames; expected ${expected} with at least one frame`);
  if (count > maxFrames) {
    throw new InputShapeError(`frames hold ${count} frames; this model takes at most ${maxFrames} ` +
      `(preprocessing.max_frames, ${spec.maxInputFactor}x its training clips): split long video into windows`);
  }
  if (gotChannels !== channels) {
    const hint = width === channels ? ' (channels-last? transpose (T, H, W, 3) to (T, 3, H, W))' : '';
    throw new InputShapeError(`frames have ${gotChannels} channels in shape ${tuple(shape.slice(1))}; expected ${expected}${hint}`);
  }
  if (height !== size || width !== size) {
    throw new InputShapeError(`frames are ${height}x${width}; this model reads ${size}x${size} face crops ` +
      `(preprocessing.data_settings.image_size); expected ${expected}`);
  }
  const out = new Float32Array(data.length);
  if (dtype === 'uint8') {
    const scale = Math.fround(uint8Scale);
    for (let i = 0; i < data.length; i++) out[i] = Math.fround(data[i] * scale);
    return { data: out, count };
  }
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const x = (out[i] = data[i]);
    if (!Number.isFinite(x)) throw new InputValueError('frames contains NaN or infinite values in the clip; expected finite numbers');
    if (x < low) low = x;
    if (x > high) high = x;
  }
  if (low < range[0] - spec.rangeSlack || high > range[1] + spec.rangeSlack) {
    const hint = high > range[1] + spec.rangeSlack ? ' (0-255 pixel values? divide by 255 or pass uint8)' : '';
    throw new InputValueError(`float frames must lie in [${pyG(range[0])}, ${pyG(range[1])}]; got values in ` +
      `[${pyG(low, 4)}, ${pyG(high, 4)}]${hint}`);
  }
  return { data: out, count };
}

/** inputs.py's message when there is nothing the model reads. */
export function nothingToClassify(spec, waveform, frames) {
  if (waveform == null && frames == null) return 'nothing to classify: pass waveform=, frames= or both';
  const unused = waveform != null ? 'audio' : 'video';
  return `this model was trained without ${unused} (preprocessing.data_settings.modalities); ` +
    `pass ${unused === 'audio' ? 'frames=' : 'waveform='}`;
}

/** The centre ``length`` samples; shorter clips are zero-padded at the end when ``pad`` (decode.py's centre_fit). */
export function centreFit(samples, length, pad = true) {
  if (samples.length > length) {
    const start = Math.floor((samples.length - length) / 2);
    return samples.slice(start, start + length);
  }
  if (pad && samples.length < length) {
    const out = new Float32Array(length);
    out.set(samples);
    return out;
  }
  return samples;
}

/**
 * Decoded audio (one Float32Array per channel, at ``sampleRate``) -> what ``Classifier.predict_file`` feeds
 * the model: the channel mean, resampled to the model's rate, clipped to [-1, 1], the centre
 * ``decoded_seconds`` window, then its centre ``clip_samples``, zero-padded at the end when shorter.
 * The one difference from Python: its file decoder resamples with FFmpeg's swresample, this with the FFT
 * resampler that the Python runtime's predict() uses (both band-limited; they differ by about 1e-3).
 */
export function prepareAudio(spec, channels, sampleRate) {
  const planes = channels instanceof Float32Array ? [channels] : channels;
  if (!Array.isArray(planes) || !planes.length || !planes.every((p) => p instanceof Float32Array)) {
    throw new InputDtypeError('audio must be one Float32Array per channel (AudioBuffer.getChannelData)');
  }
  const length = planes[0].length;
  if (length === 0 || planes.some((p) => p.length !== length)) {
    throw new InputValueError(length === 0 ? 'the audio holds no samples' : 'the audio channels differ in length');
  }
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new InputValueError(`sample_rate must be a positive whole number of Hz, got ${pyRepr(sampleRate)}`);
  }
  let mono = new Float32Array(length);
  for (let i = 0; i < length; i++) { // numpy's float32 mean over channels: summed in order, then divided
    let sum = planes[0][i];
    for (let c = 1; c < planes.length; c++) sum = Math.fround(sum + planes[c][i]);
    mono[i] = planes.length === 1 ? sum : Math.fround(sum / planes.length);
  }
  const rate = spec.waveform.sampleRate;
  if (sampleRate !== rate) {
    mono = resample(mono, sampleRate, rate);
  } else {
    for (let i = 0; i < length; i++) mono[i] = Math.min(1, Math.max(-1, mono[i]));
  }
  if (spec.media) mono = centreFit(mono, pyRound(spec.media.decodedSeconds * rate), false);
  return { waveform: centreFit(mono, spec.media ? spec.media.clipSamples : spec.waveform.clipSamples), sampleRate: rate };
}
