// Speaker enrollment, as the Python runtime's lexiedge_runtime/enrollment.py does it: the manifest's
// enrollment section read, a speaker's profile computed from the graph's statistics output, saved and
// loaded as the same JSON, refused by another artifact with the same words.

import { ManifestError, SpeakerProfileError, TooFewClipsError } from './errors.js';
import { pyRepr } from './format.js';

export const PROFILE_FORMAT = 'lexiedge-speaker-profile';
export const PROFILE_VERSION = 1;
export const NOT_ENROLLABLE = 'this model is not normalised by its speaker (its manifest has no enrollment ' +
  'section), so it takes no speaker profile: classify without one';
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The manifest's enrollment section (checked by the schema when the manifest was parsed), with the
 * artifact's identity (its graph's sha256), or null for a model not normalised by its speaker.
 */
export function enrollmentSpec(manifest, where, taskInputs, taskOutputs) {
  const section = manifest.enrollment;
  if (section == null) return null;
  const taken = new Set(taskInputs);
  for (const role of ['mean', 'std']) { // the Python runtime's av_classification._check_enrollment_names
    const name = section.profile_inputs[role];
    if (taken.has(name)) {
      throw new ManifestError(where, `enrollment.profile_inputs.${role}`, `'${name}' is one of the task's ` +
        'inputs or named twice; expected a graph input of its own');
    }
    taken.add(name);
  }
  if (taskOutputs.includes(section.statistics_output)) {
    const output = section.statistics_output;
    throw new ManifestError(where, 'enrollment.statistics_output', `'${output}' is one of the task's ` +
      'outputs; expected the graph\'s statistics output');
  }
  const graph = (manifest.runtime || {}).graph ?? 'model.onnx';
  const model = ['model', 'target'].filter((key) => typeof manifest[key] === 'string')
    .map((key) => manifest[key]);
  return {
    statisticsOutput: section.statistics_output,
    meanInput: section.profile_inputs.mean,
    stdInput: section.profile_inputs.std,
    features: section.features,
    varianceFloor: section.variance_floor,
    minClips: section.min_clips,
    graphSha256: manifest.files[graph].sha256,
    model: model.join('/'),
  };
}

/** One speaker's feature statistics for one artifact: ``mean`` and ``std`` Float32Arrays, one per feature. */
export class SpeakerProfile {
  constructor({ mean, std, clips, graphSha256, model = '' }) {
    this.mean = mean;
    this.std = std;
    this.clips = clips;
    this.graphSha256 = graphSha256;
    this.model = model;
  }

  get features() {
    return this.mean.length;
  }

  /** The Python runtime's JSON (SpeakerProfile.to_json): what JSON.stringify(profile) writes. */
  toJSON() {
    return {
      format: PROFILE_FORMAT, version: PROFILE_VERSION, graph_sha256: this.graphSha256, model: this.model,
      clips: this.clips, mean: Array.from(this.mean), std: Array.from(this.std),
    };
  }

  /** A profile from its JSON (parsed), or a SpeakerProfileError naming the first thing wrong. */
  static fromJSON(value, where = 'the speaker profile') {
    if (!isObject(value) || value.format !== PROFILE_FORMAT) {
      throw new SpeakerProfileError(`${where} is not a speaker profile (expected "format": ` +
        `"${PROFILE_FORMAT}")`);
    }
    if (value.version !== PROFILE_VERSION) {
      throw new SpeakerProfileError(`${where}: version ${pyRepr(value.version)}; this runtime reads ` +
        `speaker profiles of version ${PROFILE_VERSION}`);
    }
    if (typeof value.graph_sha256 !== 'string' || !SHA256.test(value.graph_sha256)) {
      throw new SpeakerProfileError(`${where}: graph_sha256: expected the 64 hex digits of the model's ` +
        'graph');
    }
    if (!Number.isInteger(value.clips) || value.clips < 1) {
      const message = `${where}: clips: expected a whole number >= 1, got ${pyRepr(value.clips)}`;
      throw new SpeakerProfileError(message.slice(0, 200));
    }
    const [mean, std] = ['mean', 'std'].map((key) => vector(value[key], key, where));
    if (mean.length !== std.length) {
      throw new SpeakerProfileError(`${where}: mean has ${mean.length} values but std ${std.length}; ` +
        'expected one each per feature');
    }
    if (!std.every((x) => x > 0)) {
      throw new SpeakerProfileError(`${where}: std: expected values above 0 (standard deviations)`);
    }
    return new SpeakerProfile({ mean, std, clips: value.clips, graphSha256: value.graph_sha256,
      model: typeof value.model === 'string' ? value.model : '' });
  }
}

function vector(value, key, where) {
  const finite = (x) => typeof x === 'number' && Number.isFinite(x);
  if (!Array.isArray(value) || !value.length || !value.every(finite)) {
    throw new SpeakerProfileError(`${where}: ${key}: expected a non-empty list of finite numbers, one per ` +
      'feature');
  }
  return Float32Array.from(value);
}

/** Refuse fewer clips than the manifest's enrollment.min_clips (before any is decoded or run). */
export function checkCount(spec, count) {
  if (count < spec.minClips) {
    throw new TooFewClipsError(`${count} enrollment clip(s) given; this model makes a speaker profile from ` +
      `at least ${spec.minClips} clips of the speaker (enrollment.min_clips)`);
  }
}

/**
 * The profile of clips whose statistics output is ``statistics`` (Float32Array, clips x 2 x features):
 * the manifest's rule, mean = the average of [:, 0], std = sqrt(max(the average of [:, 1] - mean^2,
 * variance_floor)), summed in float64 clip after clip as numpy sums them, then rounded to float32. The
 * Python runtime's lexiedge_runtime.tasks.av_classification.speaker_profile, the rule training used.
 */
export function speakerProfile(spec, statistics, clips) {
  const features = spec.features;
  const mean = new Float32Array(features);
  const std = new Float32Array(features);
  for (let f = 0; f < features; f++) {
    let sum = 0;
    let squares = 0;
    for (let c = 0; c < clips; c++) {
      sum += statistics[(c * 2) * features + f];
      squares += statistics[(c * 2 + 1) * features + f];
    }
    const average = sum / clips;
    mean[f] = average;
    std[f] = Math.sqrt(Math.max(squares / clips - average * average, spec.varianceFloor));
  }
  return new SpeakerProfile({ mean, std, clips, graphSha256: spec.graphSha256, model: spec.model });
}

/** The profile's two feeds' values for this artifact, or the Python runtime's refusal. */
export function profileValues(spec, speaker) {
  if (!(speaker instanceof SpeakerProfile)) {
    const what = speaker === null ? 'null' : (speaker?.constructor?.name ?? typeof speaker);
    throw new SpeakerProfileError('speaker must be a SpeakerProfile (from calibrate() or a saved one ' +
      `loaded), got ${what}`);
  }
  if (speaker.graphSha256 !== spec.graphSha256) {
    const [theirs, ours] = [speaker.graphSha256, spec.graphSha256].map((sha) => sha.slice(0, 12));
    throw new SpeakerProfileError(`the speaker profile was made with another model (graph sha256 ` +
      `${theirs}..., this model's ${ours}...): calibrate the speaker again with this model`);
  }
  if (speaker.features !== spec.features) {
    throw new SpeakerProfileError(`the speaker profile has ${speaker.features} features; this model reads ` +
      `${spec.features} (enrollment.features)`);
  }
  return { mean: speaker.mean, std: speaker.std };
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
