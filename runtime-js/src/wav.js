// A RIFF/WAVE reader: the header's rate and channels (the demo page decodes a wav at its own rate, so
// the browser does not resample it) and, where there is no Web Audio (Node), the samples themselves,
// scaled as libsndfile scales them (PCM-16 / 32768, as the Python runtime's soundfile does).

import { InputValueError } from './errors.js';

/** {format, channels, sampleRate, bitsPerSample, dataOffset, dataBytes} of a wav, or null when not a wav. */
export function wavInfo(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (data.length < 12) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const tag = (offset) => String.fromCharCode(...data.subarray(offset, offset + 4));
  if (tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
  let info = null;
  for (let offset = 12; offset + 8 <= data.length;) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ' && body + 16 <= data.length) {
      let format = view.getUint16(body, true);
      if (format === 0xfffe && size >= 26) format = view.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE
      info = { format, channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true) };
    } else if (id === 'data' && info) {
      return { ...info, dataOffset: body, dataBytes: Math.min(size, data.length - body) };
    }
    offset = body + size + (size % 2);
  }
  return null;
}

/** A PCM (8/16/24/32-bit) or float (32/64-bit) wav -> {channels: Float32Array[], sampleRate}. */
export function decodeWav(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const info = wavInfo(data);
  if (!info) throw new InputValueError('not a RIFF/WAVE file with a fmt and a data chunk');
  const { format, channels, sampleRate, bitsPerSample, dataOffset, dataBytes } = info;
  const width = bitsPerSample / 8;
  if (!channels || !sampleRate || ![1, 2, 3, 4, 8].includes(width) || !(format === 1 || format === 3)) {
    throw new InputValueError(`unsupported wav encoding (format ${format}, ${bitsPerSample} bits)`);
  }
  const frames = Math.floor(dataBytes / (width * channels));
  const view = new DataView(data.buffer, data.byteOffset + dataOffset, frames * width * channels);
  const read = format === 3
    ? (width === 4 ? (o) => view.getFloat32(o, true) : (o) => view.getFloat64(o, true))
    : {
      1: (o) => (view.getUint8(o) - 128) / 128,
      2: (o) => view.getInt16(o, true) / 32768,
      3: (o) => ((view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16))) / 8388608,
      4: (o) => view.getInt32(o, true) / 2147483648,
    }[width];
  const planes = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let i = 0, offset = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++, offset += width) planes[c][i] = read(offset);
  }
  return { channels: planes, sampleRate };
}
