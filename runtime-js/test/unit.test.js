// Unit tests that need no artifact: hashing, formatting, resampling, wav reading, manifest checks.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import test from 'node:test';

import { centreFit, checkMemberName, decodeWav, ManifestError, resample, sha256HexPlain } from '../src/index.js';
import { pyFixed, pyG, pyRound } from '../src/format.js';

test('the plain JavaScript sha256 equals node:crypto on lengths around the block edges', () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100003]) {
    const data = randomBytes(length);
    assert.equal(sha256HexPlain(new Uint8Array(data)), createHash('sha256').update(data).digest('hex'), `length ${length}`);
  }
});

test('numbers are formatted as Python formats them', () => {
  assert.equal(pyG(15), '15');
  assert.equal(pyG(4.5), '4.5');
  assert.equal(pyG(2, 4), '2');
  assert.equal(pyG(1.5, 4), '1.5');
  assert.equal(pyG(32767, 4), '3.277e+04');
  assert.equal(pyG(0.0001234, 4), '0.0001234');
  assert.equal(pyG(0.00001234, 4), '1.234e-05');
  assert.equal(pyFixed(0.25, 1), '0.2'); // half to even, as Python
  assert.equal(pyFixed(31.25, 1), '31.2');
  assert.equal(pyFixed(30.06, 1), '30.1');
  assert.equal(pyRound(2.5), 2);
  assert.equal(pyRound(3.5), 4);
});

test('resampling keeps a tone below both Nyquists and the length rule round(N * new / old)', () => {
  const rate = 48000;
  const tone = Float32Array.from({ length: 4800 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / rate));
  const out = resample(tone, rate, 16000);
  assert.equal(out.length, 1600);
  let worst = 0;
  for (let i = 0; i < out.length; i++) {
    worst = Math.max(worst, Math.abs(out[i] - 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000)));
  }
  assert.ok(worst < 1e-5, `max error ${worst}`);
  assert.equal(resample(new Float32Array(441), 44100, 16000).length, 160);
});

test('centreFit crops the centre and pads at the end', () => {
  assert.deepEqual(Array.from(centreFit(Float32Array.of(1, 2, 3, 4, 5), 2)), [2, 3]);
  assert.deepEqual(Array.from(centreFit(Float32Array.of(1, 2), 4)), [1, 2, 0, 0]);
  assert.deepEqual(Array.from(centreFit(Float32Array.of(1, 2), 4, false)), [1, 2]);
});

test('a 16-bit stereo wav reads as libsndfile reads it', () => {
  const frames = 3;
  const bytes = new Uint8Array(44 + frames * 4);
  const view = new DataView(bytes.buffer);
  const text = (offset, s) => [...s].forEach((c, i) => { bytes[offset + i] = c.charCodeAt(0); });
  text(0, 'RIFF'); view.setUint32(4, 36 + frames * 4, true); text(8, 'WAVE'); text(12, 'fmt ');
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 2, true);
  view.setUint32(24, 22050, true); view.setUint32(28, 22050 * 4, true); view.setUint16(32, 4, true);
  view.setUint16(34, 16, true); text(36, 'data'); view.setUint32(40, frames * 4, true);
  [-32768, 32767, 0, 16384, 1, -1].forEach((v, i) => view.setInt16(44 + 2 * i, v, true));
  const { channels, sampleRate } = decodeWav(bytes);
  assert.equal(sampleRate, 22050);
  assert.deepEqual(Array.from(channels[0]), [-1, 0, 1 / 32768]);
  assert.deepEqual(Array.from(channels[1]), [32767 / 32768, 0.5, -1 / 32768]);
});

test('a manifest path that would leave the artifact is refused', () => {
  for (const name of ['../model.onnx', '/etc/passwd', 'a/./b', 'a\\b', 'C:/x']) {
    assert.throws(() => checkMemberName(name, 'here', 'files'), ManifestError, name);
  }
  assert.equal(checkMemberName('sub/model.onnx', 'here', 'files'), 'sub/model.onnx');
});
