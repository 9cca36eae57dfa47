// The same artifact and the same real RAVDESS wav in Node and in the Python runtime.
//
// tests/js/test_runtime_js.py runs these with LEXIEDGE_JS_EXPECTATIONS: a JSON file holding the
// artifacts (fp32 and int8), the Python runtime's probabilities for each wav, its messages for bad
// inputs and for an artifact with a flipped byte. Without it (plain `npm test`) they are skipped.
// Measurements go to LEXIEDGE_JS_RESULTS (JSON) when set, for the pytest side to report.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';

import * as ort from 'onnxruntime-node';

import { ArtifactIntegrityError, decodeWav, loadClassifier, resample, RuntimeInputError } from '../src/index.js';

const expectationsPath = process.env.LEXIEDGE_JS_EXPECTATIONS;
const skip = expectationsPath ? false : 'LEXIEDGE_JS_EXPECTATIONS is not set (run through tests/js/test_runtime_js.py)';
const expected = expectationsPath ? JSON.parse(readFileSync(expectationsPath, 'utf8')) : null;
const results = { cases: [] };
const sessionOptions = { intraOpNumThreads: 1, executionProviders: ['cpu'] };
const loaded = {};

async function classifier(key) {
  loaded[key] ??= loadClassifier(expected.artifacts[key], { ort, sessionOptions });
  return loaded[key];
}

test.after(() => {
  if (process.env.LEXIEDGE_JS_RESULTS) writeFileSync(process.env.LEXIEDGE_JS_RESULTS, JSON.stringify(results, null, 1));
});

const maxDelta = (a, b) => a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
const argmax = (a) => a.reduce((best, x, i) => (x > a[best] ? i : best), 0);

test('the same wav gives the Python runtime\'s probabilities', { skip }, async (t) => {
  for (const item of expected?.cases ?? []) {
    await t.test(`${item.artifact} ${item.name}`, async () => {
      const model = await classifier(item.artifact);
      const { channels, sampleRate } = decodeWav(readFileSync(item.wav));
      const result = await model.predictAudio(channels, sampleRate);
      const delta = maxDelta(Array.from(result.scores), item.probabilities);
      const top1 = argmax(item.probabilities) === result.index;
      results.cases.push({ name: item.name, artifact: item.artifact, max_abs_delta: delta, same_top1: top1,
        label: result.label, python_label: item.label });
      if (item.max_abs_delta !== null) assert.ok(delta <= item.max_abs_delta, `max |delta| ${delta} > ${item.max_abs_delta}`);
      if (item.same_top1) assert.ok(top1, `top-1 ${result.label} differs from Python's ${item.label}`);
    });
  }
});

test('onnxruntime-web (the browser\'s WASM build) agrees with Python too, run here in Node', { skip }, async (t) => {
  const web = await import('onnxruntime-web');
  web.env.wasm.numThreads = 1;
  for (const item of expected?.cases ?? []) {
    await t.test(`${item.artifact} ${item.name}`, async () => {
      const model = await loadClassifier(expected.artifacts[item.artifact], { ort: web });
      const { channels, sampleRate } = decodeWav(readFileSync(item.wav));
      const result = await model.predictAudio(channels, sampleRate);
      const delta = maxDelta(Array.from(result.scores), item.probabilities);
      const top1 = argmax(item.probabilities) === result.index;
      results.cases.push({ name: `${item.name} (onnxruntime-web WASM)`, artifact: item.artifact, max_abs_delta: delta,
        same_top1: top1, label: result.label, python_label: item.label });
      if (item.max_abs_delta !== null) assert.ok(delta <= item.max_abs_delta, `max |delta| ${delta} > ${item.max_abs_delta}`);
      if (item.same_top1) assert.ok(top1, `top-1 ${result.label} differs from Python's ${item.label}`);
      await model.release();
    });
  }
});

test('the JavaScript resampler is the Python runtime\'s (numpy FFT) to 1e-6', { skip }, () => {
  const { input, rate, target, output } = expected.resample;
  const ours = resample(Float32Array.from(input), rate, target);
  assert.equal(ours.length, output.length);
  const delta = maxDelta(Array.from(ours), output);
  results.resample_max_abs_delta = delta;
  assert.ok(delta <= 1e-6, `max |delta| ${delta}`);
});

test('a bad input gets the Python runtime\'s message', { skip }, async (t) => {
  const model = await classifier('fp32');
  for (const item of expected?.errors ?? []) {
    await t.test(item.name, async () => {
      const args = buildInput(item.input);
      await assert.rejects(model.predict(args), (error) => {
        assert.ok(error instanceof RuntimeInputError, `${error.name}: ${error.message}`);
        assert.equal(error.name, item.error);
        assert.equal(error.message, item.message);
        return true;
      });
    });
  }
});

test('an artifact with one flipped byte is refused before a session exists', { skip }, async () => {
  const folder = mkdtempSync(join(tmpdir(), 'lexiedge-js-'));
  try {
    const copy = join(folder, 'artifact');
    cpSync(expected.artifacts.fp32, copy, { recursive: true });
    const graph = join(copy, expected.flipped.file);
    const bytes = readFileSync(graph);
    bytes[expected.flipped.offset] ^= 0xff;
    writeFileSync(graph, bytes);
    const where = expected.flipped.where.replace('{copy}', copy);
    await assert.rejects(loadClassifier(copy, { ort, sessionOptions }), (error) => {
      assert.ok(error instanceof ArtifactIntegrityError, `${error.name}: ${error.message}`);
      assert.equal(error.message, expected.flipped.message.replaceAll('{copy}', copy));
      assert.ok(where);
      return true;
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

/** The arrays tests/js/test_runtime_js.py describes, built as an app would pass them. */
function buildInput({ dtype = 'float32', length = 16000, fill = 0.1, nan_at: nanAt = null, sample_rate: sampleRate = 16000,
  waveform = true }) {
  if (!waveform) return { sampleRate };
  const Type = { float32: Float32Array, float64: Float64Array, int16: Int16Array, uint8: Uint8Array }[dtype];
  const data = new Type(length).fill(dtype.startsWith('float') ? fill : 1);
  if (nanAt !== null) data[nanAt] = NaN;
  return { waveform: data, sampleRate };
}
