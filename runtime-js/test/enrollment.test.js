// Speaker enrollment in Node against the Python runtime: the same speaker's real RAVDESS wavs give the same
// profile, the same predictions with it and without it, the same JSON, and the same refusals.
//
// tests/js/test_runtime_js_enrollment.py runs this file with LEXIEDGE_JS_ENROLLMENT: a JSON file holding the
// speaker-normalised artifact, the Python runtime's profile of the enrollment wavs, its probabilities for the
// probe wavs with and without that profile, and its messages for bad input. Without it, skipped.
// Measurements go to LEXIEDGE_JS_ENROLLMENT_RESULTS (JSON) when set.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import test from 'node:test';

import * as ort from 'onnxruntime-node';

import { decodeWav, loadClassifier, RuntimeInputError, SpeakerProfile } from '../src/index.js';

const expectationsPath = process.env.LEXIEDGE_JS_ENROLLMENT;
const skip = expectationsPath ? false
  : 'LEXIEDGE_JS_ENROLLMENT is not set (run through tests/js/test_runtime_js_enrollment.py)';
const expected = expectationsPath ? JSON.parse(readFileSync(expectationsPath, 'utf8')) : null;
const results = { probes: [] };
const sessionOptions = { intraOpNumThreads: 1, executionProviders: ['cpu'], logSeverityLevel: 3 };
const loaded = {};

const classifier = (key, lib = ort) => {
  const cacheKey = `${key}-${lib === ort ? 'node' : 'web'}`;
  const options = { ort: lib, sessionOptions: lib === ort ? sessionOptions : {} };
  loaded[cacheKey] ??= loadClassifier(expected.artifacts[key], options);
  return loaded[cacheKey];
};
const decoded = (path) => decodeWav(readFileSync(path));
const maxDelta = (a, b) => Array.from(a).reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), 0);
const relativeDelta = (a, b) => Array.from(a).reduce(
  (worst, x, i) => Math.max(worst, Math.abs(x - b[i]) / Math.max(1, Math.abs(b[i]))), 0);

test.after(() => {
  // a variable of its own: `node --test test/` runs this file, skipped, beside artifact.test.js
  const path = process.env.LEXIEDGE_JS_ENROLLMENT_RESULTS;
  if (path) writeFileSync(path, JSON.stringify(results, null, 1));
});

test('the speaker\'s wavs give the Python runtime\'s profile', { skip }, async () => {
  const model = await classifier('enrollment');
  const profile = await model.calibrate(expected.enroll.map(decoded));
  const python = expected.profile;
  assert.equal(profile.clips, python.clips);
  assert.equal(profile.graphSha256, python.graph_sha256);
  results.profile_mean_delta = relativeDelta(profile.mean, python.mean);
  results.profile_std_delta = relativeDelta(profile.std, python.std);
  assert.ok(results.profile_mean_delta <= 1e-5, `mean: relative delta ${results.profile_mean_delta}`);
  assert.ok(results.profile_std_delta <= 1e-5, `std: relative delta ${results.profile_std_delta}`);
  // the same file format
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(profile))), Object.keys(python));
});

test('predictions with a profile, and without one, are the Python runtime\'s', { skip }, async (t) => {
  const model = await classifier('enrollment');
  const ours = await model.calibrate(expected.enroll.map(decoded));
  const saved = SpeakerProfile.fromJSON(expected.profile); // the Python runtime's saved profile, loaded here
  for (const probe of expected.probes) {
    await t.test(probe.wav.split('/').pop(), async () => {
      const { channels, sampleRate } = decoded(probe.wav);
      const withOurs = await model.predictAudio(channels, sampleRate, { speaker: ours });
      const withSaved = await model.predictAudio(channels, sampleRate, { speaker: saved });
      const fallback = await model.predictAudio(channels, sampleRate);
      assert.equal(withOurs.normalization, 'speaker');
      assert.equal(fallback.normalization, 'global');
      const deltas = {
        speaker: maxDelta(withOurs.scores, probe.speaker), saved: maxDelta(withSaved.scores, probe.speaker),
        global: maxDelta(fallback.scores, probe.global),
      };
      results.probes.push({ wav: probe.wav, ...deltas });
      for (const [name, delta] of Object.entries(deltas)) {
        assert.ok(delta <= 1e-4, `${name}: max |delta| ${delta}`);
      }
    });
  }
});

test('onnxruntime-web (the browser\'s WASM build) enrolls alike', { skip }, async () => {
  const web = await import('onnxruntime-web');
  web.env.wasm.numThreads = 1;
  const model = await classifier('enrollment', web);
  const profile = await model.calibrate(expected.enroll.map(decoded));
  results.web_profile_mean_delta = relativeDelta(profile.mean, expected.profile.mean);
  assert.ok(results.web_profile_mean_delta <= 1e-5, `mean: relative delta ${results.web_profile_mean_delta}`);
  const probe = expected.probes[0];
  const { channels, sampleRate } = decoded(probe.wav);
  const result = await model.predictAudio(channels, sampleRate, { speaker: profile });
  results.web_speaker_delta = maxDelta(result.scores, probe.speaker);
  assert.ok(results.web_speaker_delta <= 1e-4, `max |delta| ${results.web_speaker_delta}`);
  await model.release();
});

test('bad enrollment input gets the Python runtime\'s class and message', { skip }, async (t) => {
  const tone = Float32Array.from({ length: 16000 }, (_, i) => 0.1 * Math.sin(i / 10));
  const calls = {
    'one clip': (m) => m.calibrate([tone]),
    'one waveform, not a list': (m) => m.calibrate(tone),
    'out of range': (m) => m.calibrate([tone, tone.map((x) => x * 30)]),
    'int16 PCM': (m) => m.calibrate([tone, Int16Array.from(tone, (x) => Math.round(x * 32767))]),
    'a model without enrollment: calibrate': (m) => m.calibrate([tone, tone]),
    'a model without enrollment: speaker': async (m) => m.predict({ waveform: tone, speaker: await ours() }),
    'a profile of another model': (m) => m.predict({
      waveform: tone, speaker: SpeakerProfile.fromJSON(expected.other_profile),
    }),
    'a profile of another version': () => SpeakerProfile.fromJSON({ ...expected.profile, version: 2 }),
  };
  const ours = async () => (await classifier('enrollment')).calibrate([tone, tone]);
  for (const item of expected.errors) {
    await t.test(item.name, async () => {
      const model = await classifier(item.artifact);
      await assert.rejects(async () => calls[item.name](model), (error) => {
        assert.ok(error instanceof RuntimeInputError, `${error.name}: ${error.message}`);
        assert.equal(error.name, item.error);
        assert.equal(error.message, item.message);
        return true;
      });
    });
  }
});
