// A classifier artifact in an ONNX Runtime session (onnxruntime-web in a browser, onnxruntime-node
// in Node; the caller passes the one it imported). Loading reads manifest.json, checks every listed
// file's sha256 and only then creates the session from the very bytes that were hashed.
// A model normalised by its speaker (the manifest's enrollment) also makes speaker profiles (calibrate)
// and takes one in predict({..., speaker}), as the Python runtime's Classifier does.

import { checkCount, enrollmentSpec, NOT_ENROLLABLE, profileValues, speakerProfile } from './enrollment.js';
import {
  ArtifactError, ArtifactIntegrityError, InferenceError, InputShapeError, InputValueError, NoEnrollmentError,
  RuntimeInputError,
} from './errors.js';
import { checkFrames, checkWaveform, dtypeOf, nothingToClassify, prepareAudio } from './inputs.js';
import { MANIFEST, checkVerified, classifierSpec, decodeManifest, parseManifest } from './manifest.js';
import { freeInitializers } from './onnx-graph.js';
import { sha256Hex } from './sha256.js';

const IN_NODE = typeof process !== 'undefined' && Boolean(process.versions?.node);

/**
 * Load the artifact at ``source``: a URL (the folder's; the browser), a directory path (Node), or
 * ``{where, read: async (name) => Uint8Array}``. Options: ``ort`` (the onnxruntime module, required),
 * ``allowUnverified``, ``sessionOptions`` (passed to InferenceSession.create), ``headers`` (fetch).
 */
export async function loadClassifier(source, options = {}) {
  const { ort, allowUnverified = false, sessionOptions = {}, headers } = options;
  if (!ort?.InferenceSession) {
    throw new ArtifactError('loadClassifier needs { ort }: the onnxruntime-web (browser) or onnxruntime-node module');
  }
  const reader = makeReader(source, headers);
  const where = reader.where;
  const manifest = parseManifest(decodeManifest(await reader.read(MANIFEST), where), where);
  checkVerified(manifest, where, allowUnverified);
  const spec = classifierSpec(manifest, where);
  const taskOutputs = [spec.outputs.probabilities, spec.outputs.logits];
  const enrollment = enrollmentSpec(manifest, where, taskInputs(spec), taskOutputs);
  const bytes = {};
  const problems = [];
  for (const name of Object.keys(manifest.files).sort()) {
    let data;
    try {
      data = await reader.read(name);
    } catch (error) {
      problems.push(`${name}: ${error.problem || `unreadable (${error.message})`}`);
      continue;
    }
    const wanted = manifest.files[name].sha256;
    const actual = await sha256Hex(data);
    if (actual !== wanted) {
      problems.push(`${name}: sha256 mismatch (expected ${wanted.slice(0, 12)}..., got ${actual.slice(0, 12)}...)`);
    }
    bytes[name] = data;
  }
  if (problems.length) throw new ArtifactIntegrityError(where, problems);
  const graph = (manifest.runtime || {}).graph ?? 'model.onnx';
  let model = bytes[graph];
  let globalProfile = null;
  if (enrollment) { // the profile inputs made plain inputs: ORT's JS API cannot feed an initializer
    const names = [enrollment.meanInput, enrollment.stdInput];
    let values;
    try {
      ({ model, values } = freeInitializers(model, names));
    } catch (error) {
      throw new ArtifactError(`${where}/${graph}: the manifest's enrollment section names the overridable ` +
        `inputs '${names[0]}', '${names[1]}': ${error.message}`);
    }
    for (const name of names) {
      const { data, dims } = values[name];
      const features = dims[dims.length - 1];
      if (data === null || data.length !== enrollment.features || features !== enrollment.features) {
        throw new ArtifactError(`${where}/${graph}: ${name} holds ${features} features but the manifest's ` +
          `enrollment.features says ${enrollment.features}`);
      }
    }
    globalProfile = { mean: values[names[0]].data, std: values[names[1]].data };
  }
  let session;
  try {
    session = await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    const first = String(error?.message ?? error).trim().split('\n')[0];
    throw new ArtifactError(`${where}/${graph}: ONNX Runtime cannot load the graph: ${first}`);
  }
  return new Classifier({ ort, session, manifest, spec, where, enrollment, globalProfile });
}

function taskInputs(spec) {
  return [spec.waveform.input, spec.frames.input, spec.audioMask.input, spec.videoMask.input];
}

export class Classifier {
  constructor({ ort, session, manifest, spec, where, enrollment = null, globalProfile = null }) {
    this.ort = ort;
    this.session = session;
    this.manifest = manifest;
    this.spec = spec;
    this.labels = spec.labels;
    this.where = where;
    this.enrollment = enrollment; // null: a model not normalised by its speaker
    this.globalProfile = globalProfile; // the training statistics the graph falls back to, fed explicitly
    const inputs = taskInputs(spec);
    const missing = inputs.filter((name) => !session.inputNames.includes(name));
    if (missing.length || !session.outputNames.includes(spec.outputs.probabilities)) {
      throw new ArtifactError(`${where}: inputs [${session.inputNames}] / outputs [${session.outputNames}]; the manifest ` +
        `names inputs [${inputs}] and a '${spec.outputs.probabilities}' output`);
    }
    const { statisticsOutput, meanInput, stdInput } = enrollment ?? {};
    if (enrollment && (!session.outputNames.includes(statisticsOutput) ||
        !session.inputNames.includes(meanInput) || !session.inputNames.includes(stdInput))) {
      throw new ArtifactError(`${where}: the manifest's enrollment section names the output ` +
        `'${statisticsOutput}' and the inputs '${meanInput}', '${stdInput}'; the graph has outputs ` +
        `[${session.outputNames}] and inputs [${session.inputNames}]`);
    }
  }

  /**
   * Classify one clip: ``waveform`` mono float samples in [-1, 1] at ``sampleRate`` (default 16000, as in
   * Python; resampled to the model's), ``frames`` ``{data, shape: [T, 3, H, W]}`` (uint8 or float in [0, 1]).
   * Either may be left out: zeros with mask 0, as in training. Resolves to
   * ``{label, index, probabilities: {label: p}, scores: Float32Array, logits}``.
   */
  async predict({ waveform = null, frames = null, sampleRate = 16000, speaker = null } = {}) {
    const result = await this.run(this.feeds({ waveform, frames, sampleRate, speaker }));
    result.normalization = this.enrollment ? (speaker == null ? 'global' : 'speaker') : null;
    return result;
  }

  /** Decoded audio (channels at ``sampleRate``) classified as Python's predict_file classifies a file. */
  async predictAudio(channels, sampleRate, { speaker = null } = {}) {
    return this.predict({ ...prepareAudio(this.spec, channels, sampleRate), speaker });
  }

  /**
   * A speaker's profile from a few of their clips (Python's Classifier.calibrate): each a mono waveform at
   * ``sampleRate`` (checked as predict checks it) or decoded audio ``{channels, sampleRate}`` (prepared as
   * predictAudio prepares it, i.e. as Python decodes a file). At least the manifest's enrollment.min_clips.
   * Resolves to a SpeakerProfile (statistics only) for predict({..., speaker}).
   */
  async calibrate(clips, { sampleRate = 16000 } = {}) {
    const { enrollment, spec } = this;
    if (!enrollment) throw new NoEnrollmentError(NOT_ENROLLABLE);
    if (dtypeOf(clips) !== null) {
      throw new InputShapeError(`enrollment clips have shape (${clips.length},); expected a list of the ` +
        'speaker\'s clips (file paths or mono waveforms) or a (clips, samples) array');
    }
    if (!Array.isArray(clips)) {
      const what = typeof clips === 'string' ? 'str' : (clips?.constructor?.name ?? String(clips));
      throw new InputValueError('calibrate takes a list of the speaker\'s clips (file paths or mono ' +
        `waveforms), got one ${what}`);
    }
    checkCount(enrollment, clips.length);
    const waveforms = clips.map((clip, position) => this.enrollmentWaveform(clip, position, sampleRate));
    const features = enrollment.features;
    const statistics = new Float32Array(waveforms.length * 2 * features);
    for (const [position, samples] of waveforms.entries()) { // one clip per call: clips differ in length
      const feeds = this.feeds({ waveform: samples, sampleRate: spec.waveform.sampleRate });
      const outputs = await this.outputs(feeds);
      statistics.set(outputs[enrollment.statisticsOutput].data, position * 2 * features);
    }
    return speakerProfile(enrollment, statistics, waveforms.length);
  }

  /** One enrollment clip as the model's waveform at its rate, or predict's refusal, naming the clip. */
  enrollmentWaveform(clip, position, sampleRate) {
    const { spec } = this;
    try {
      if (clip && typeof clip === 'object' && 'channels' in clip) {
        const prepared = prepareAudio(spec, clip.channels, clip.sampleRate);
        return checkWaveform(spec, prepared.waveform, prepared.sampleRate);
      }
      if (Array.isArray(clip) && clip.some((x) => Array.isArray(x) || ArrayBuffer.isView(x))) {
        throw new InputShapeError(`has shape (${clip.length}, ${clip[0].length}); expected one mono ` +
          'waveform (samples,) or a file path');
      }
      if (!spec.usesAudio) {
        throw new InputValueError('this model was trained without audio; enrollment reads the speaker\'s ' +
          'voice');
      }
      return checkWaveform(spec, clip, sampleRate);
    } catch (error) {
      if (error instanceof RuntimeInputError) {
        throw new error.constructor(`clips[${position}]: ${error.message}`);
      }
      throw error;
    }
  }

  /**
   * The graph's feeds (ort Tensors, batch of one) for a clip: checked exactly as predict checks it. A model
   * normalised by its speaker also gets its profile inputs: ``speaker``'s, or the global training statistics.
   */
  feeds({ waveform = null, frames = null, sampleRate = 16000, speaker = null } = {}) {
    const { spec, ort } = this;
    const profile = this.profileFeeds(speaker);
    const audio = waveform != null && spec.usesAudio ? checkWaveform(spec, waveform, sampleRate) : null;
    const video = frames != null && spec.usesVideo ? checkFrames(spec, frames) : null;
    if (audio === null && video === null) throw new InputValueError(nothingToClassify(spec, waveform, frames));
    const samples = audio ?? new Float32Array(spec.waveform.clipSamples);
    const { channels, imageSize: size, frameCount } = spec.frames;
    const count = video ? video.count : frameCount;
    return {
      [spec.waveform.input]: new ort.Tensor('float32', samples, [1, samples.length]),
      [spec.frames.input]: new ort.Tensor('float32', video ? video.data : new Float32Array(count * channels * size * size),
        [1, count, channels, size, size]),
      [spec.audioMask.input]: new ort.Tensor('float32', Float32Array.of(audio ? spec.audioMask.present : spec.audioMask.absent), [1]),
      [spec.videoMask.input]: new ort.Tensor('float32', Float32Array.of(video ? spec.videoMask.present : spec.videoMask.absent), [1]),
      ...profile,
    };
  }

  /**
   * The profile inputs' tensors, (1, features) each: ``speaker``'s, or the global ones; none without
   * enrollment.
   */
  profileFeeds(speaker) {
    const { enrollment, ort } = this;
    if (!enrollment) {
      if (speaker != null) throw new NoEnrollmentError(NOT_ENROLLABLE);
      return {};
    }
    const { mean, std } = speaker == null ? this.globalProfile : profileValues(enrollment, speaker);
    return {
      [enrollment.meanInput]: new ort.Tensor('float32', mean, [1, mean.length]),
      [enrollment.stdInput]: new ort.Tensor('float32', std, [1, std.length]),
    };
  }

  /** The session on ready feeds; ORT's own refusals become an InferenceError naming the shapes. */
  async run(feeds) {
    const outputs = await this.outputs(feeds);
    const scores = Float32Array.from(outputs[this.spec.outputs.probabilities].data);
    const logitsName = this.spec.outputs.logits;
    const logits = logitsName && outputs[logitsName] ? Float32Array.from(outputs[logitsName].data) : null;
    let index = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[index]) index = i;
    const probabilities = Object.fromEntries(this.labels.map((label, i) => [label, scores[i]]));
    return { label: this.labels[index], index, probabilities, scores, logits };
  }

  /** Every output of the session on ready feeds; ORT's refusals become an InferenceError naming shapes. */
  async outputs(feeds) {
    try {
      return await this.session.run(feeds);
    } catch (error) {
      const first = String(error?.message ?? error).trim().split('\n')[0];
      const shapes = Object.entries(feeds).map(([name, t]) => `${name} (${t.dims.join(', ')})`).join(', ');
      throw new InferenceError(`ONNX Runtime could not run the classifier on ${shapes}: ${first}`);
    }
  }

  /** Frees the session (onnxruntime-web holds WASM memory until then). */
  async release() {
    await this.session.release?.();
  }
}

function makeReader(source, headers) {
  if (source && typeof source === 'object' && typeof source.read === 'function') {
    return { where: String(source.where ?? 'artifact'), read: source.read };
  }
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new ArtifactError('loadClassifier: expected the artifact folder as a URL, a directory path or {where, read}');
  }
  const text = String(source).replace(/\/+$/, '');
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || !IN_NODE;
  if (isUrl) {
    return {
      where: text,
      async read(name) {
        const response = await fetch(`${text}/${name.split('/').map(encodeURIComponent).join('/')}`,
          { headers, cache: 'no-store' });
        if (!response.ok) {
          if (name === MANIFEST) {
            throw new ArtifactError(`${text}: no ${MANIFEST} (HTTP ${response.status}); not an artifact written by \`lexiedge export\``);
          }
          throw Object.assign(new Error(`HTTP ${response.status}`), { problem: response.status === 404 ? 'missing' : `HTTP ${response.status}` });
        }
        return new Uint8Array(await response.arrayBuffer());
      },
    };
  }
  return { where: text, read: (name) => readInDirectory(text, name) };
}

async function readInDirectory(directory, name) {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  if (name === MANIFEST) await checkArtifactDirectory(fs, directory);
  let current = directory;
  const parts = name.split('/');
  for (const [depth, part] of parts.entries()) { // no symbolic link anywhere on the way (artifact.py's rule)
    current = path.join(current, part);
    let stat;
    try {
      stat = await fs.lstat(current);
    } catch {
      if (name === MANIFEST) throw new ArtifactError(`${directory}: no ${MANIFEST}; not an artifact written by \`lexiedge export\``);
      throw Object.assign(new Error('missing'), { problem: 'missing' });
    }
    if (name === MANIFEST) { // the manifest's own refusals, worded as artifact.py's read_manifest words them
      if (stat.isSymbolicLink()) {
        throw new ArtifactError(`${directory}/${MANIFEST} is a symbolic link; refusing it (an artifact's files must lie inside it)`);
      }
      if (!stat.isFile()) {
        throw new ArtifactError(`${directory}/${MANIFEST} is not a regular file; not an artifact written by \`lexiedge export\``);
      }
    }
    if (stat.isSymbolicLink()) {
      throw Object.assign(new Error('link'), { problem: 'a symbolic link, refused (copy the file itself into the artifact)' });
    }
    if (depth === parts.length - 1 && !stat.isFile()) throw Object.assign(new Error('not a file'), { problem: 'not a regular file' });
  }
  return new Uint8Array(await fs.readFile(current));
}

/** The directory itself, refused as artifact.py's read_manifest refuses it (missing, or a file). */
async function checkArtifactDirectory(fs, directory) {
  let stat;
  try {
    stat = await fs.stat(directory); // the folder itself may be reached through a link (artifacts/current -> v3)
  } catch {
    throw new ArtifactError(`${directory}: no such artifact directory (expected one written by \`lexiedge export\`)`);
  }
  if (!stat.isDirectory()) {
    throw new ArtifactError(`${directory} is a file; expected an artifact directory written by \`lexiedge export\``);
  }
}
